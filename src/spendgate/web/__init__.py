"""The management REST API and the dashboard."""
