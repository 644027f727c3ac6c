"""Prefect flows: thin orchestration over tvau/."""
