"""ObjectVision's clients against Imago: users who log in with JWTs, and its detection shapes."""
