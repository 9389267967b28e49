"""The FastAPI Imago's routes and shapes (docs/coming-from-fastapi-imago.md), over Imago's own."""
