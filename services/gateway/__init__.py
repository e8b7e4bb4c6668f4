"""The gateway: an HTTP API shaped like Dify's dataset API, publishing to the documents topic."""
