"""The REST API at ``/api/v1`` (and signed webhooks at ``/hooks``): JSON in, JSON out.

`routes` holds the handlers (each marks its access rule where its path is written),
`schemas` the response models, `wire` how each record looks as JSON (shared with the CLI's
`Remote`), `errors` how errors become JSON. Request scoping is `orchestrion.web`'s.
"""
