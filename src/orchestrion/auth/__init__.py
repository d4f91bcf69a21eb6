"""Authentication and authorisation, pure: principals and `authorize`, tokens, passwords,
sealed secrets, masking, and the SSRF check for HTTP tasks.

Nothing here touches the database or an HTTP framework; the store keeps the rows, and the
API, CLI and UI call these functions. Import the submodules directly.
"""
