"""Pure knowledge of Bedrock's runtime wire formats (stdlib only, no I/O).

- ``modelids``: model-id and ARN parsing, path encoding, the cross-region auto-prefix
- ``eventstream``: the application/vnd.amazon.eventstream codec (incremental decoder, encoder)
- ``usage``: token usage and stop reason from every operation's response and stream
- ``errors``: AWS-style error responses and in-stream exception frames
- ``sigv4``: AWS Signature Version 4 signing and verification (clock passed in)
"""
