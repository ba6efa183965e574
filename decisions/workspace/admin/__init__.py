"""The knowledge base's admin pages, registered on the decisions admin site."""
