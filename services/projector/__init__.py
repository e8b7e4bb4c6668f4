"""The status projector: every document's current state, for dashboards and the API."""
