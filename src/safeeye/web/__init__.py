"""The web workbench: HTML pages (Jinja2 + HTMX) and the JSON API under /api/v1.

``create_app(safe)`` in ``safeeye.web.app`` builds the FastAPI application; importing this
package starts nothing. See docs/web.md.
"""
