"""docker-py: healthcheck fields and one-shot stats against berthd."""
import time

import docker

c = docker.from_env(version="1.41")
ctr = c.containers.run(
    "busybox", ["sleep", "600"], detach=True,
    healthcheck={"test": ["CMD-SHELL", "echo ok"], "interval": 200_000_000, "timeout": 2_000_000_000, "retries": 2},
)
try:
    deadline = time.time() + 10
    while time.time() < deadline:
        ctr.reload()
        if ctr.attrs["State"]["Health"]["Status"] == "healthy":
            break
        time.sleep(0.1)
    h = ctr.attrs["State"]["Health"]
    assert h["Status"] == "healthy" and h["FailingStreak"] == 0, h
    assert h["Log"][-1]["ExitCode"] == 0 and h["Log"][-1]["Output"] == "ok\n", h
    assert ctr.health == "healthy", ctr.health
    assert ctr.attrs["Config"]["Healthcheck"]["Test"] == ["CMD-SHELL", "echo ok"], ctr.attrs["Config"]
    s = ctr.stats(stream=False)
    for key in ("read", "cpu_stats", "precpu_stats", "memory_stats", "pids_stats", "blkio_stats", "networks"):
        assert key in s, (key, s.keys())
    assert s["cpu_stats"]["cpu_usage"]["total_usage"] > 0, s["cpu_stats"]
    assert s["memory_stats"]["usage"] > 0 and "stats" in s["memory_stats"], s["memory_stats"]
    assert "eth0" in s["networks"], s["networks"]
    assert s["pids_stats"]["current"] >= 1, s["pids_stats"]
finally:
    ctr.remove(force=True)
print("ok")
