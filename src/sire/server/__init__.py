"""`sire server`: the HTTP API over the store, with API tokens, roles and an audit log.

`app.create_app` builds the ASGI application (FastAPI, imported only there);
`auth` mints and checks tokens and roles without any web framework, so `sire token`
stays light.
"""
