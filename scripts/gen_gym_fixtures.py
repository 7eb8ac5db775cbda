#!/usr/bin/env python3
"""Records reference trajectories from the real Gymnasium package.

The fixtures let agents/tests/gym_dynamics.rs check that ami's Pendulum and
CartPole step exactly like Gymnasium's Pendulum-v1 and CartPole-v1.

Usage (needs network once, for pip):

    python3 -m venv /tmp/gymvenv
    /tmp/gymvenv/bin/pip install gymnasium numpy
    /tmp/gymvenv/bin/python scripts/gen_gym_fixtures.py

Writes agents/tests/fixtures/gym_pendulum.json and gym_cartpole.json. Each
holds a header (generator, gymnasium and numpy versions, env id) and a list
of episodes; each step records the internal state before the step
(env.unwrapped.state, float64), the action given to ami (float32 values,
written exactly), the internal state after, the float32 observation, the
reward and the terminated flag.

CartPole-v1 has discrete actions; to integrate an arbitrary force f the
script clips f to [-10, 10] (as ami does), sets
env.unwrapped.force_mag = abs(f) and passes action 1 if f > 0 else 0, so the
real Gymnasium code does the integration.
"""

import json
import os
import sys

import gymnasium as gym
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "agents", "tests", "fixtures")

EPISODES = 4
STEPS = 60


def f64(x):
    """A float64 as a JSON number that round-trips exactly."""
    return float(np.float64(x))


def header(env_id):
    return {
        "generator": "scripts/gen_gym_fixtures.py",
        "gymnasium_version": gym.__version__,
        "numpy_version": np.__version__,
        "env_id": env_id,
    }


def pendulum():
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(20240601)
    episodes = []
    for ep in range(EPISODES):
        seed = 1000 + ep
        env.reset(seed=seed)
        steps = []
        for t in range(STEPS):
            if ep == 0:
                # Out-of-bound torques exercise the clipping.
                u = rng.uniform(-4.0, 4.0)
            elif ep == 1:
                # Bang-bang pumping: swings up and exercises the speed clip.
                u = 2.5 if np.sin(0.15 * t) > 0 else -2.5
            else:
                u = rng.uniform(-2.0, 2.0)
            action = np.array([u], dtype=np.float32)
            before = [f64(v) for v in env.unwrapped.state]
            obs, reward, terminated, truncated, _ = env.step(action)
            after = [f64(v) for v in env.unwrapped.state]
            steps.append({
                "state": before,
                "action": [float(action[0])],
                "next_state": after,
                "obs": [float(v) for v in obs],
                "reward": f64(reward),
                "terminated": bool(terminated),
            })
        episodes.append({"seed": seed, "steps": steps})
    env.close()
    return {**header("Pendulum-v1"), "episodes": episodes}


def cartpole():
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(20240602)
    episodes = []
    for ep in range(EPISODES):
        seed = 2000 + ep
        env.reset(seed=seed)
        steps = []
        for t in range(STEPS):
            x, x_dot, theta, theta_dot = env.unwrapped.state
            if ep == 0:
                # Random forces, some out of bounds, some zero.
                f = rng.uniform(-14.0, 14.0) if t % 7 else 0.0
            elif ep == 1:
                # A constant push: the pole falls and the episode terminates.
                f = 7.5
            else:
                # A noisy balancing controller: long episodes, small forces.
                f = 20.0 * theta + 3.0 * theta_dot + 1.0 * x + 1.5 * x_dot + rng.normal(0.0, 1.5)
            force = np.float32(f)
            clipped = float(np.clip(force, np.float32(-10.0), np.float32(10.0)))
            env.unwrapped.force_mag = abs(clipped)
            before = [f64(v) for v in env.unwrapped.state]
            obs, reward, terminated, truncated, _ = env.step(1 if clipped > 0 else 0)
            after = [f64(v) for v in env.unwrapped.state]
            steps.append({
                "state": before,
                "action": [float(force)],
                "next_state": after,
                "obs": [float(v) for v in obs],
                "reward": f64(reward),
                "terminated": bool(terminated),
            })
            if terminated or truncated:
                break
        episodes.append({"seed": seed, "steps": steps})
    env.close()
    return {**header("CartPole-v1"), "episodes": episodes}


def write(name, data):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    n = sum(len(e["steps"]) for e in data["episodes"])
    print(f"{path}: {n} steps, {os.path.getsize(path)} bytes", file=sys.stderr)


if __name__ == "__main__":
    write("gym_pendulum.json", pendulum())
    write("gym_cartpole.json", cartpole())
