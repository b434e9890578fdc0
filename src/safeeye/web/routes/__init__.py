"""The routes, one module per resource; each calls domain services and renders the answer."""
