"""The HTTP server: the /v1 API (OpenAPI generated from its types), problem+json
errors, bearer-token auth, /metrics, and the process that serves them."""
