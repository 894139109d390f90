"""docker-py's volume API against berthd (DOCKER_HOST points at it)."""
import docker

c = docker.from_env(version="1.41")
v = c.volumes.create("pyvol", driver="local", labels={"from": "py"})
try:
    assert v.attrs["Labels"] == {"from": "py"}, v.attrs
    assert c.volumes.get("pyvol").attrs["Mountpoint"].endswith("/volumes/pyvol/_data")
    assert [x.name for x in c.volumes.list(filters={"label": "from=py"})] == ["pyvol"]
    out = c.containers.run("busybox", ["sh", "-c", "echo py > /v/f; cat /v/f"], volumes={"pyvol": {"bind": "/v", "mode": "rw"}}, remove=True)
    assert out == b"py\n", out
    ctr = c.containers.create("busybox", ["true"], volumes={"pyvol": {"bind": "/v", "mode": "ro"}})
    mounts = ctr.attrs["Mounts"]
    assert mounts[0]["Name"] == "pyvol" and mounts[0]["RW"] is False and mounts[0]["Type"] == "volume", mounts
    try:
        v.remove()
        raise AssertionError("a volume in use was removed")
    except docker.errors.APIError as e:
        assert e.status_code == 409 and "in use" in str(e), e
    ctr.remove()
    df = c.df()
    assert any(x["Name"] == "pyvol" and x["UsageData"]["Size"] == 3 for x in df["Volumes"]), df["Volumes"]
    pruned = c.volumes.prune(filters={"label": "from=py"})
    assert pruned["VolumesDeleted"] == ["pyvol"], pruned
finally:
    try:
        v.remove()
    except docker.errors.NotFound:
        pass
print("ok")
