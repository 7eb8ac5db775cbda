import os, time
import numpy as np
import gymnasium as gym

class Scripted(gym.Env):
    """A test environment that misbehaves on its third step as `mode` says."""
    def __init__(self, mode="ok", obs_dim=2, action="box"):
        self.mode = mode
        self.action = action
        self.t = 0
        self.obs_dim = obs_dim
        if mode == "dict":
            self.observation_space = gym.spaces.Dict({"b": gym.spaces.Discrete(3), "a": gym.spaces.Box(-1, 1, (2,), np.float64)})
        else:
            self.observation_space = gym.spaces.Box(-1, 1, (obs_dim,), np.float32)
        if action == "multidiscrete":
            # The observation echoes the action received.
            self.observation_space = gym.spaces.Box(-10, 10, (2,), np.float32)
            self.action_space = gym.spaces.MultiDiscrete([3, 2], start=[1, 0])
        else:
            self.action_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(0.0), {}
    def _obs(self, x):
        if self.mode == "dict":
            return {"a": np.array([x, -x]), "b": self.t % 3}
        return np.array([x, -x] + [0.0] * (self.obs_dim - 2), np.float32)
    def step(self, action):
        self.t += 1
        print("noise on stdout from print", flush=True)
        os.write(1, b"raw noise on fd 1\n")
        if self.t == 3:
            if self.mode == "hang":
                time.sleep(1000)
            if self.mode == "fork_hang":
                os.fork()  # the helper holds the reply pipe open too
                time.sleep(1000)
            if self.mode == "crash":
                os._exit(7)
            if self.mode == "nan":
                return np.full(self.obs_dim, np.nan, np.float32), 0.0, False, False, {}
            if self.mode == "raise":
                raise RuntimeError("boom at step 3")
        if self.action == "multidiscrete":
            return np.array(action, np.float32), 1.0, False, False, {}
        return self._obs(float(action[0]) * 0.5), 1.0, False, False, {}

gym.register("AmiScripted-v0", entry_point=Scripted, max_episode_steps=10)
