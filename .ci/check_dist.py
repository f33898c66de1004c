"""Build the wheel and sdist, check what they hold, run the example on the wheel.

    python .ci/check_dist.py [--outdir DIR]

1. ``python -m build`` makes an sdist and, from it, a wheel.
2. Both must hold every file of the package (templates, migrations, .po and .mo
   translations, py.typed); the wheel nothing else: no tests, example or benchmarks.
3. The wheel's METADATA must name the supported Python and Django versions.
4. The wheel goes into a new virtual environment, not editable, with
   django-environ; a copy of the example shop, far from this checkout, runs
   ``check``, ``migrate`` and ``demo`` there, importing the app from the wheel.

Exits non-zero, saying what is wrong, at the first problem.
"""

from __future__ import annotations

import argparse
import email
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from email.message import Message
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "pureclarity_gdpr"
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
DJANGOS = ("5.2", "6.0", "6.1")
REQUIRES_PYTHON = ">=3.10"
DJANGO_SPECIFIERS = frozenset({">=5.2", "<6.2"})
# A requirement without an environment marker: a name, then its specifiers.
REQUIREMENT = re.compile(r"(?P<name>[A-Za-z0-9._-]+)\s*\(?(?P<specifiers>[^;()]*)\)?")
# One of each kind must be there even if the checkout itself lost it.
REQUIRED_KINDS = {
    "py.typed": "py.typed",
    "a migration": "migrations/0001_initial.py",
    "a template": "templates/admin/pureclarity_gdpr/forget_identifiers.html",
    "a translation source": "locale/de/LC_MESSAGES/django.po",
    "a compiled translation": "locale/de/LC_MESSAGES/django.mo",
}
# Variables of the caller that would lead the example away from its defaults.
FOREIGN_VARIABLES = {
    "PYTHONPATH",
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "HTTPS",
}
TIMEOUT = 300


class DistError(Exception):
    """A problem with the built distributions, said the way a person can act on it."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--outdir", type=Path, help="where to build (default: a temp dir)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pcgdpr-dist-") as scratch:
        outdir = args.outdir or Path(scratch) / "dist"
        try:
            wheel = check_archives(outdir)
            run_example_on(wheel, Path(scratch))
        except DistError as err:
            print(f"check_dist: {err}", file=sys.stderr)
            return 1
    print(
        "check_dist: the wheel and the sdist are complete; "
        "the example runs on the wheel."
    )
    return 0


def check_archives(outdir: Path) -> Path:
    """Build both archives, check their contents and metadata; return the wheel."""
    wheel, sdist = build(outdir)
    expected = package_files()

    with zipfile.ZipFile(wheel) as archive:
        wheel_names = archive.namelist()
    check_holds(wheel.name, wheel_names, "", expected)
    check_only_the_package(wheel.name, wheel_names)

    with tarfile.open(sdist) as archive:
        sdist_names = archive.getnames()
    check_holds(sdist.name, sdist_names, sdist_prefix(sdist), expected)

    check_metadata(wheel, wheel_metadata(wheel, wheel_names))
    return wheel


def build(outdir: Path) -> tuple[Path, Path]:
    if outdir.exists():
        shutil.rmtree(outdir)
    run([sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)])

    wheels = sorted(outdir.glob("*.whl"))
    sdists = sorted(outdir.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise DistError(f"expected one wheel and one sdist in {outdir}")
    for archive in (*wheels, *sdists):
        print(f"check_dist: built {archive.name} ({archive.stat().st_size} bytes)")
    return wheels[0], sdists[0]


def package_files() -> set[str]:
    """Every file of the package in this checkout, as a path inside an archive."""
    found = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / PACKAGE).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix not in {".pyc", ".pyo"}
    }
    return found | {f"{PACKAGE}/{name}" for name in REQUIRED_KINDS.values()}


def sdist_prefix(sdist: Path) -> str:
    # An sdist unpacks into one folder, named like the archive.
    return sdist.name.removesuffix(".tar.gz") + "/"


def check_holds(
    archive: str, names: list[str], prefix: str, expected: set[str]
) -> None:
    missing = sorted(name for name in expected if prefix + name not in set(names))
    if missing:
        raise DistError(f"{archive} lacks: " + ", ".join(missing))
    print(f"check_dist: {archive} holds all {len(expected)} files of the package")


def check_only_the_package(archive: str, names: list[str]) -> None:
    """A wheel installs the app and its metadata, nothing beside them."""
    strays = sorted(
        name
        for name in names
        if not name.startswith(f"{PACKAGE}/") and ".dist-info/" not in name
    )
    if strays:
        raise DistError(
            f"{archive} holds files outside the package: " + ", ".join(strays)
        )
    print(f"check_dist: {archive} holds nothing but {PACKAGE} and its metadata")


def wheel_metadata(wheel: Path, names: list[str]) -> Message:
    (path,) = (name for name in names if name.endswith(".dist-info/METADATA"))
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(path).decode("utf-8")
    return email.message_from_string(text)


def check_metadata(wheel: Path, metadata: Message) -> None:
    """PyPI and pip show these; they must say what CI tests."""
    classifiers = set(metadata.get_all("Classifier") or [])
    wanted = {f"Programming Language :: Python :: {version}" for version in PYTHONS}
    wanted |= {f"Framework :: Django :: {version}" for version in DJANGOS}
    problems = [f"no classifier {name!r}" for name in sorted(wanted - classifiers)]
    if metadata.get("Requires-Python") != REQUIRES_PYTHON:
        problems.append(f"Requires-Python is {metadata.get('Requires-Python')!r}")
    if requirements(metadata).get("django") != DJANGO_SPECIFIERS:
        wanted_range = ",".join(sorted(DJANGO_SPECIFIERS))
        problems.append(f"Requires-Dist does not hold Django{wanted_range}")
    if problems:
        raise DistError(f"{wheel.name}'s METADATA: " + "; ".join(problems))
    print(
        f"check_dist: METADATA requires Python {REQUIRES_PYTHON}, lists Python "
        f"{', '.join(PYTHONS)} and Django {', '.join(DJANGOS)}"
    )


def requirements(metadata: Message) -> dict[str, frozenset[str]]:
    """The unconditional requirements: a lower-case name to its specifiers."""
    found = {}
    for line in metadata.get_all("Requires-Dist") or []:
        match = REQUIREMENT.fullmatch(line.strip())
        if match:
            specifiers = match["specifiers"].replace(" ", "").split(",")
            found[match["name"].lower()] = frozenset(filter(None, specifiers))
    return found


def run_example_on(wheel: Path, scratch: Path) -> None:
    """The example shop, copied away from the checkout, on the installed wheel."""
    python = make_venv(scratch / "venv")
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel), "django-environ"])

    shop = scratch / "shop"
    shutil.copytree(
        ROOT / "example_project",
        shop,
        ignore=shutil.ignore_patterns("db.sqlite3", ".env", "__pycache__"),
    )
    env = example_environment()
    check_imported_from_venv(python, shop, env)
    check_translations(python, shop, env)
    for command in (["check"], ["migrate", "--noinput"], ["demo"]):
        run([str(python), "manage.py", *command], cwd=shop, env=env)


def make_venv(folder: Path) -> Path:
    run([sys.executable, "-m", "venv", str(folder)])
    return folder / "bin" / "python"


def example_environment() -> dict[str, str]:
    """The caller's environment, less what would lead the example elsewhere.

    Python adds only the script's folder, the copied shop, to sys.path: the
    checkout is nowhere on it.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in FOREIGN_VARIABLES
        and not key.startswith(("PURECLARITY_", "VIRTUAL_ENV"))
    }
    return env


def check_imported_from_venv(python: Path, shop: Path, env: dict[str, str]) -> None:
    code = "import pureclarity_gdpr; print(pureclarity_gdpr.__file__)"
    where = Path(capture([str(python), "manage.py", "shell", "-c", code], shop, env))
    site_packages = python.parent.parent / "lib"
    if not where.resolve().is_relative_to(site_packages.resolve()):
        raise DistError(f"the example imported {PACKAGE} from {where}, not the wheel")
    print(f"check_dist: the example imports {PACKAGE} from {where}")


def check_translations(python: Path, shop: Path, env: dict[str, str]) -> None:
    """The compiled German catalogue ships and loads."""
    code = (
        "from django.utils import translation\n"
        "with translation.override('de'):\n"
        "    print(translation.gettext('store view'))"
    )
    german = capture([str(python), "manage.py", "shell", "-c", code], shop, env)
    if german == "store view":
        raise DistError("the wheel's German translation does not load")
    print(
        f"check_dist: the wheel's German catalogue loads ('store view' is {german!r})"
    )


def run(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> None:
    print("check_dist: $ " + " ".join(command), flush=True)
    done = subprocess.run(command, cwd=cwd, env=env, timeout=TIMEOUT, check=False)  # noqa: S603
    if done.returncode != 0:
        raise DistError(f"{' '.join(command)} exited {done.returncode}")


def capture(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(  # noqa: S603
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise DistError(f"{' '.join(command)} exited {done.returncode}: {done.stderr}")
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":
    sys.exit(main())
