-- Template libraries held by the server (docs/templates.md), so that YAML workflows it
-- loads can resolve `uses:` without library files. A (name, version) is pushed once:
-- its body never changes (pushing other content under the same version is refused),
-- which keeps a library version meaning one thing. body: the library as JSON.
CREATE TABLE template_libraries (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    digest       TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL,
    pushed_by    TEXT,
    pushed_at    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, version)
);
