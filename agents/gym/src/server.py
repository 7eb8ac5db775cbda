"""ami's Gymnasium server: runs one or more copies of a Gymnasium
environment for an ami process that talks to it over this process's stdin
and stdout.

Embedded in the ami binary and started as `python -c <this file>`; it
needs nothing but gymnasium (and numpy, which gymnasium brings).

Framing, little-endian: a request is one opcode byte, a u32 payload
length and the payload; a reply is one status byte (b"O" ok, b"E" error),
a u32 length and the payload. Errors are JSON {kind, message, traceback}.

    M make   JSON {id, kwargs, copies,  -> JSON spaces and spec
                   first_copy}
    R reset  u8 has_seed, u64 seed      -> f64[obs_dim] observation
             [, u32 copy]
    S step   f64[copies * action_len]   -> per copy: f64 reward,
             (one action per copy)         u8 terminated, u8 truncated,
                                           u8 success (0: the info has no
                                           `success` / `is_success`, 1:
                                           false, 2: true), f64[obs_dim] obs
    A step fails as a whole, naming the first copy that raised (numbered
    from first_copy), after every other copy has stepped.
    L list   pattern (UTF-8)            -> JSON [{id, observation, action,
                                           max_episode_steps} | {id, unavailable}]
    Q quit                              -> (nothing; the process exits)

The protocol owns the original stdout: fd 1 is pointed at stderr before
gymnasium is imported, so whatever an environment prints (from Python or
from C) cannot corrupt a reply. The process exits when its stdin closes or
its parent (ami) is gone.
"""

import importlib
import json
import os
import signal
import struct
import sys
import traceback

PROTO_IN = os.dup(0)
PROTO_OUT = os.dup(1)
os.dup2(2, 1)
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
sys.stdout = sys.stderr
# Ctrl-C reaches the whole process group: ami handles it and closes us.
signal.signal(signal.SIGINT, signal.SIG_IGN)
# Pinned to one CPU when ami asks (GymConfig::cpu): a request and its reply
# on the CPU of the thread that waits for it skip a cross-CPU wake-up.
if os.environ.get("AMI_GYM_CPU", "").isdigit() and hasattr(os, "sched_setaffinity"):
    try:
        os.sched_setaffinity(0, {int(os.environ["AMI_GYM_CPU"])})
    except OSError:
        pass


def _watch_parent(parent=os.getppid()):
    # Exit when ami is gone, even in the middle of a step: the parent's
    # death closes our stdin, but a step that hangs would never read it.
    # (PR_SET_PDEATHSIG would fire when the ami *thread* that started us
    # ends, not the process.)
    import time

    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


import threading

threading.Thread(target=_watch_parent, daemon=True).start()


_inp = os.fdopen(PROTO_IN, "rb", buffering=1 << 16)


def read_exact(n):
    buf = _inp.read(n)
    if len(buf) < n:
        os._exit(0)  # ami went away
    return buf


def reply(status, payload):
    data = status + struct.pack("<I", len(payload)) + payload
    view = memoryview(data)
    while view:
        n = os.write(PROTO_OUT, view)
        view = view[n:]


def error(kind, message):
    reply(b"E", json.dumps({"kind": kind, "message": message, "traceback": traceback.format_exc()}).encode())


def finite_or_none(x):
    x = float(x)
    return x if x == x and abs(x) != float("inf") else None


def describe(space, spaces):
    import numpy as np

    if isinstance(space, spaces.Box):
        return {
            "type": "box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": [finite_or_none(v) for v in space.low.ravel()],
            "high": [finite_or_none(v) for v in space.high.ravel()],
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "multi_discrete", "nvec": [int(v) for v in space.nvec.ravel()], "start": [int(v) for v in getattr(space, "start", np.zeros_like(space.nvec)).ravel()]}
    return {"type": "other", "repr": str(space)}


def main():
    try:
        import numpy as np
        import gymnasium as gym
        from gymnasium import spaces
    except Exception as e:
        op = read_exact(5)
        read_exact(struct.unpack("<I", op[1:])[0])
        error("import", f"{type(e).__name__}: {e}")
        return
    envs = []
    obs_flat = None
    act = None
    adim = 0
    first_copy = 0
    while True:
        head = read_exact(5)
        op, n = head[:1], struct.unpack("<I", head[1:])[0]
        payload = read_exact(n) if n else b""
        if op == b"Q":
            try:
                for env in envs:
                    env.close()
            finally:
                return
        if op in (b"S", b"R") and not envs:
            error("protocol", "reset or step before make")
            continue
        copy = 0
        try:
            if op == b"S":
                # One action per copy, each copy stepped in turn: one
                # record (reward, terminated, truncated, success, observation) each.
                # A copy that raises does not stop the others: every copy
                # steps once, then the first failure is the reply.
                a = np.frombuffer(payload, dtype=np.float64)
                if len(a) != adim * len(envs):
                    error("protocol", f"{len(a)} action values for {len(envs)} copies of {adim}")
                    continue
                out, failed = [], None
                for i, env in enumerate(envs):
                    try:
                        obs, reward, terminated, truncated, info = env.step(act(a[i * adim:(i + 1) * adim]))
                        ok = info.get("success", info.get("is_success")) if isinstance(info, dict) else None
                        flag = 0 if ok is None else 1 + bool(ok)
                        out.append(struct.pack("<dBBB", float(reward), bool(terminated), bool(truncated), flag))
                        out.append(obs_flat(obs).tobytes())
                    except BaseException as e:
                        if failed is None:
                            failed = (i, e, traceback.format_exc())
                if failed is None:
                    reply(b"O", b"".join(out))
                else:
                    i, e, tb = failed
                    where = f"copy {first_copy + i}: " if len(envs) > 1 or first_copy else ""
                    reply(b"E", json.dumps({"kind": "step", "message": f"{where}{type(e).__name__}: {e}", "traceback": tb}).encode())
            elif op == b"R":
                if len(payload) not in (9, 13):
                    error("protocol", f"a reset request of {len(payload)} bytes")
                    continue
                has_seed, seed = struct.unpack("<BQ", payload[:9])
                copy = struct.unpack("<I", payload[9:13])[0] if len(payload) == 13 else 0
                if copy >= len(envs):
                    error("protocol", f"no copy {copy} (this process holds {len(envs)})")
                    continue
                obs, _ = envs[copy].reset(seed=int(seed) if has_seed else None)
                reply(b"O", obs_flat(obs).tobytes())
            elif op == b"M":
                req = json.loads(payload)
                first_copy = int(req.get("first_copy", 0))
                made = None
                try:
                    for _ in range(max(1, int(req.get("copies", 1)))):
                        made = make(req, gym, spaces, np)
                        if made is None:
                            break
                        envs.append(made[0])
                finally:
                    if made is None:
                        for env in envs:
                            try:
                                env.close()
                            except BaseException:
                                pass
                        envs = []
                if made is not None:
                    _, obs_flat, act, info = made
                    adim = info["action_dim"]
                    reply(b"O", json.dumps(info).encode())
            elif op == b"L":
                reply(b"O", json.dumps(list_envs(payload.decode(), gym)).encode())
            else:
                error("protocol", f"unknown opcode {op!r}")
        except BaseException as e:  # SystemExit from an env too: report it, keep serving
            kind = {b"S": "step", b"R": "reset"}.get(op, "make" if op == b"M" else "protocol")
            where = f"copy {first_copy + copy}: " if op == b"R" and (len(envs) > 1 or first_copy) else ""
            error(kind, f"{where}{type(e).__name__}: {e}")


def make(req, gym, spaces, np):
    """Makes the env `req` names; replies with an error and returns None
    when it cannot."""
    env_id, kwargs = req["id"], req.get("kwargs") or {}
    if ":" in env_id:  # "module:Id-v0": the module registers Id-v0
        module, env_id = env_id.split(":", 1)
        try:
            importlib.import_module(module)
        except Exception as e:
            error("make", f"importing module `{module}` failed: {type(e).__name__}: {e}")
            return None
    try:
        gym.spec(env_id)
    except Exception as e:
        error("unknown_id", f"{type(e).__name__}: {e}")
        return None
    try:
        env = gym.make(env_id, **kwargs)
    except TypeError as e:
        error("bad_kwargs" if "keyword argument" in str(e) else "make", f"{type(e).__name__}: {e}")
        return None
    except Exception as e:
        error("make", f"{type(e).__name__}: {e}")
        return None
    ospace, aspace = env.observation_space, env.action_space
    try:
        obs_dim = int(spaces.flatdim(ospace))
    except Exception as e:
        error("space", f"observation space {ospace} cannot be flattened: {e}")
        return None
    if isinstance(ospace, spaces.Box):
        obs_flat = lambda o: np.asarray(o, dtype=np.float64).ravel()
    else:
        obs_flat = lambda o, s=ospace: np.asarray(spaces.flatten(s, o), dtype=np.float64)
    if isinstance(aspace, spaces.Box):
        if np.issubdtype(aspace.dtype, np.integer):
            act = lambda a, s=aspace: np.rint(a).astype(s.dtype).reshape(s.shape)
        else:
            act = lambda a, s=aspace: a.astype(s.dtype).reshape(s.shape)
    elif isinstance(aspace, spaces.Discrete):
        act = lambda a: int(a[0])
    elif isinstance(aspace, spaces.MultiDiscrete):
        act = lambda a, s=aspace: a.astype(s.dtype).reshape(s.shape)
    else:
        error("space", f"action space {aspace} is not Box, Discrete or MultiDiscrete")
        return None
    limit = env.spec.max_episode_steps if env.spec is not None else None
    info = {
        "observation_space": describe(ospace, spaces),
        "obs_repr": str(ospace),
        "obs_dim": obs_dim,
        "action_space": describe(aspace, spaces),
        "max_episode_steps": limit,
        "action_dim": int(np.prod(aspace.shape)) if isinstance(aspace, (spaces.Box, spaces.MultiDiscrete)) else 1,
        "gymnasium": gym.__version__,
        "python": sys.version.split()[0],
    }
    return env, obs_flat, act, info


def list_envs(pattern, gym):
    out = []
    for env_id in sorted(gym.registry):
        if pattern.lower() not in env_id.lower():
            continue
        try:
            e = gym.make(env_id)
            out.append({"id": env_id, "observation": str(e.observation_space), "action": str(e.action_space), "max_episode_steps": e.spec.max_episode_steps})
            e.close()
        except BaseException as e:
            out.append({"id": env_id, "unavailable": f"{type(e).__name__}: {e}"})
    return out

main()
