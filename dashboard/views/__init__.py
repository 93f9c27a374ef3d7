"""The dashboard's pages: one module per page, each exposing `render()` (registered in dashboard/ui/navigation.py)."""
