"""docker-py's archive API (put_archive/get_archive) against berthd."""
import io
import tarfile

import docker

c = docker.from_env(version="1.41")
ctr = c.containers.run("busybox", ["sh", "-c", "mkdir -p /srv && echo orig > /srv/a && sleep 600"], detach=True)
try:
    for _ in range(100):
        if ctr.exec_run(["test", "-f", "/srv/a"]).exit_code == 0:
            break
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"from python\n"
        info = tarfile.TarInfo("py/hello.txt")
        info.size = len(data)
        info.mode = 0o640
        info.uid, info.gid = 1234, 4321
        t.addfile(info, io.BytesIO(data))
    assert ctr.put_archive("/srv", buf.getvalue()) is True
    out = ctr.exec_run(["stat", "-c", "%a %u %g", "/srv/py/hello.txt"]).output
    assert out == b"640 1234 4321\n", out

    stream, stat = ctr.get_archive("/srv")
    assert stat["name"] == "srv" and stat["mode"] & (1 << 31), stat
    raw = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        names = sorted(t.getnames())
        assert names == ["srv", "srv/a", "srv/py", "srv/py/hello.txt"], names
        assert t.extractfile("srv/py/hello.txt").read() == b"from python\n"

    try:
        ctr.get_archive("/missing")
        raise AssertionError("a missing path was archived")
    except docker.errors.NotFound as e:
        assert "Could not find the file /missing" in str(e), e
    try:
        ctr.put_archive("/srv/a", buf.getvalue())
        raise AssertionError("extracted onto a file")
    except docker.errors.APIError as e:
        assert e.status_code == 400 and "not a directory" in str(e), e
finally:
    ctr.remove(force=True)

# attach(logs=True, stream=False) on an exited container: the log, then the end.
done = c.containers.run("busybox", ["sh", "-c", "echo one; echo two >&2"], detach=True)
try:
    done.wait()
    # stdout and stderr are separate pipes: their relative order is not kept (nor by dockerd).
    out = done.attach(stdout=True, stderr=True, stream=False, logs=True)
    assert sorted(out.splitlines()) == [b"one", b"two"], out
finally:
    done.remove(force=True)
print("ok")
