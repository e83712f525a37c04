"""The web side of the daemon (issue 17): what operators and readers see.

    server.Dashboard ── uvicorn thread ──▶ app.create_app (Starlette)
        /            Stories  ┐
        /story/<id>  Story    ├─ pages.Pages ── read-only Store ── text (clean, http_url, highlighted)
        /sources     Sources  ┘
        /metrics     prometheus-client registry (newsradar.metrics + probes.StateExposition)
        /healthz     the process serves          /readyz  probes.Readiness (bus, store, notifiers)
    auth.Gate: no login on loopback, a bearer token (or its session cookie) anywhere else.
"""
