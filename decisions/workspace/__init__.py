"""The content owners' workspace: the admin site (`DecisionsAdminSite`), its model pages, the
topic overview and map, the guided new topic, sign-in lock-out and second factor."""
