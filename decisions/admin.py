"""Django's door to the admin pages (`admin.autodiscover` imports `<app>.admin`); they live in
decisions/workspace/admin/."""

from decisions.workspace.admin import content, records, topics

__all__ = ["content", "records", "topics"]
