"""The JSON API (django-ninja): public schemas and endpoints."""
