"""Request scoping shared by the REST API and the web UI: one HTTP edge, two faces.

`api` (JSON) and `ui` (pages) are sibling packages that never import each other; both
import this one, which sits below them and above `orchestrion.app`:

- `request`: the `App` and the principal of a request (`app_of`, `principal_of`).
- `guard`: `Authenticate` (ASGI middleware: who is calling, and the audit record after the
  response) and `guard` (the app-wide dependency: the matched route's rule decides).
- `policy`: `Rule`, and `rule(...)` / `public` that declare it at the route itself, so
  every route's path is written once; `access_table` reads the whole table off the routes.
- `targets`: what a request touches (run, workflow, body's spec, ...), for the rules.
- `scope`: what a principal may see, for list routes and streams.
- `csrf`: the session's CSRF token, checked on every cookie-authenticated unsafe request.
- `params`: the bounded query parameters (row ids, cursors, indexes, times) both share.
- `limits`: the request body cap. `errors`: the JSON error body every refusal uses.
- `headers`: what every response carries (``X-Content-Type-Options: nosniff``).

`orchestrion.server` assembles the two faces on one FastAPI application.
"""
