"""Container tasks: one attempt runs in a fresh container on a Docker Engine compatible API
(Docker, or Podman's compatible socket), through the ``docker`` client, imported only when
a container task runs or orphans are looked for.

`settings` says where the engine is (cheap to import); `engine` opens it and gets images;
`run` runs one attempt (`run_container`); `reaper` removes the containers of attempts
whose lease was lost (a worker killed mid-task).
"""
