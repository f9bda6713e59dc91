"""Dashboard pages: each renders what app/services.py returns; none computes."""
