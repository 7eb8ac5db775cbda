#!/usr/bin/env bash
# Makes .venv-gym: a Python virtual environment with the gymnasium release
# ami is tested against (and MuJoCo), for the Gymnasium bridge and its
# tests. Idempotent: a venv that already has the pinned release is kept.
#
#   scripts/gym-venv.sh                  # then: AMI_PYTHON=.venv-gym/bin/python ami run --env gym:Pendulum-v1
#   PYTHON=python3.12 scripts/gym-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GYMNASIUM=1.4.0
ROBOTICS=1.4.2   # Gymnasium-Robotics: PointMaze
venv=.venv-gym
py=${PYTHON:-python3}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import gymnasium, mujoco, gymnasium_robotics, sys; sys.exit(gymnasium.__version__ != '$GYMNASIUM' or gymnasium_robotics.__version__ != '$ROBOTICS')" 2>/dev/null; then
  echo "$venv has gymnasium $GYMNASIUM and gymnasium-robotics $ROBOTICS"
  exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "gymnasium[mujoco]==$GYMNASIUM" "gymnasium-robotics==$ROBOTICS"
"$venv/bin/python" -c "import gymnasium, mujoco, gymnasium_robotics; print('$venv: gymnasium', gymnasium.__version__, 'mujoco', mujoco.__version__, 'gymnasium-robotics', gymnasium_robotics.__version__)"
