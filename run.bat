@echo off
rem MelodyMaker on Windows: "run.bat" sets up and serves on 127.0.0.1:8090; "run.bat test" runs the tests.
setlocal
cd /d "%~dp0"
if not exist .venv\Scripts\python.exe (
  echo ==^> creating the virtual environment in .venv
  py -3.11 -m venv .venv 2>nul || python -m venv .venv
)
set PY=.venv\Scripts\python.exe
%PY% -m pip install --disable-pip-version-check -q -r requirements.txt || exit /b 1
%PY% -m pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt || exit /b 1
%PY% -c "from melodymaker.audio import warm_up; warm_up()"
if /i "%1"=="test" (
  shift
  %PY% -m pytest -q tests
  exit /b %errorlevel%
)
dir /s /b genres\*.au genres\*.wav genres\*.mp3 genres\*.flac genres\*.ogg >nul 2>&1
if errorlevel 1 (
  echo ==^> genres\ has no audio: building the default library
  %PY% -m melodymaker library build --out genres --per-genre 20 --seed 0
)
%PY% app.py %*
