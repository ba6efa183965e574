"""JSON API v1: topics, their form schema, and recommendations (OpenAPI at /api/v1/openapi.json)."""

from ninja import NinjaAPI

api = NinjaAPI(title="Imaging Advisor API", version="1", urls_namespace="api-v1")
