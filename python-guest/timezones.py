"""The IANA time zone database, carried inside the guest for `zoneinfo`.

zoneinfo reads zone files from the file system or from the `tzdata` package's resources; the
guest has neither at run time. So at build time the zone files of `tzdata` (from PyPI, pinned in
scripts/setup.sh) are read into a table kept in the snapshot, and zoneinfo reads them from there.
"""

import io
import os
import zoneinfo
from zoneinfo import _common, _tzpath


def _read_zones(root):
    zones = {}
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                data = f.read()
            if data.startswith(b"TZif"):
                zones[os.path.relpath(path, root)] = data
    return zones


def install():
    import tzdata

    zones = _read_zones(os.path.join(os.path.dirname(tzdata.__file__), "zoneinfo"))
    names = frozenset(zones) - {"posixrules"}

    def load_tzdata(key):
        data = zones.get(key)
        if data is None:
            raise zoneinfo.ZoneInfoNotFoundError("No time zone found with key %s" % key)
        return io.BytesIO(data)

    def available_timezones():
        return set(names)

    _common.load_tzdata = load_tzdata
    _tzpath.available_timezones = zoneinfo.available_timezones = available_timezones
