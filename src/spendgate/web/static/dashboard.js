/* spendgate dashboard: charts from embedded JSON, filter forms that apply on change. */
(function () {
  "use strict";

  var PALETTE = [
    "#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed",
    "#0891b2", "#db2777", "#65a30d", "#9ca3af", "#4b5563"
  ];

  function money(value) {
    return "$" + Number(value).toLocaleString(undefined, {maximumFractionDigits: 4});
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof Chart === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var datasets = spec.datasets.map(function (set, i) {
      var colour = PALETTE[i % PALETTE.length];
      return {
        label: set.label,
        data: set.data.map(Number),
        backgroundColor: spec.type === "line" ? colour + "33" : colour,
        borderColor: colour,
        fill: spec.type === "line" && spec.stacked,
        tension: 0.2,
        pointRadius: spec.type === "line" ? 2 : 0
      };
    });
    new Chart(canvas, {
      type: spec.type,
      data: {labels: spec.labels, datasets: datasets},
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        indexAxis: spec.horizontal ? "y" : "x",
        plugins: {
          legend: {display: datasets.length > 1, position: "bottom"},
          tooltip: {callbacks: {label: function (ctx) {
            var value = spec.horizontal ? ctx.parsed.x : ctx.parsed.y;
            return ctx.dataset.label + ": " + (spec.money ? money(value) : value);
          }}}
        },
        scales: {
          x: {stacked: !!spec.stacked},
          y: {stacked: !!spec.stacked, beginAtZero: true}
        }
      }
    });
    canvas.dataset.drawn = "true";
  }

  function autosubmit(form) {
    form.querySelectorAll("select").forEach(function (select) {
      select.addEventListener("change", function () { form.submit(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
    document.querySelectorAll("form[data-autosubmit]").forEach(autosubmit);
  });
})();
