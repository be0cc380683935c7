#!/usr/bin/env python3
"""Reference sun times for sun-thionville-2026.csv (see SOURCE.md).

The NOAA Solar Calculator equations (NOAA Global Monitoring Laboratory,
https://gml.noaa.gov/grad/solcalc/calcdetails.html, after Meeus, Astronomical Algorithms, 2nd
ed., ch. 25): declination and equation of time from the geometric mean longitude/anomaly of the
sun, the apparent longitude and the corrected obliquity; the hour angle of a zenith of 90.833 deg
(sunrise/sunset: refraction 34' + semi-diameter 16') or 96 deg (civil twilight). Unlike the
spreadsheet, which evaluates the sun at local noon, each event is iterated with the sun's
position at the event itself (3 passes), so the table is good to a few seconds.

Run: /usr/bin/python3 generate-sun-reference.py > sun-thionville-2026.csv
"""
import datetime
from math import acos, asin, cos, degrees, radians, sin, tan

LAT, LON = 49.3579, 6.1683  # Thionville (Moselle), sea level


def sun(jd):
    t = (jd - 2451545.0) / 36525.0  # Julian centuries (UT used for TT: < 1 s here)
    l0 = (280.46646 + t * (36000.76983 + t * 0.0003032)) % 360
    m = 357.52911 + t * (35999.05029 - 0.0001537 * t)
    e = 0.016708634 - t * (0.000042037 + 0.0000001267 * t)
    c = (sin(radians(m)) * (1.914602 - t * (0.004817 + 0.000014 * t))
         + sin(radians(2 * m)) * (0.019993 - 0.000101 * t) + sin(radians(3 * m)) * 0.000289)
    omega = 125.04 - 1934.136 * t
    app = l0 + c - 0.00569 - 0.00478 * sin(radians(omega))
    eps0 = 23 + (26 + (21.448 - t * (46.815 + t * (0.00059 - t * 0.001813))) / 60) / 60
    eps = eps0 + 0.00256 * cos(radians(omega))
    decl = degrees(asin(sin(radians(eps)) * sin(radians(app))))
    y = tan(radians(eps / 2)) ** 2
    eot = 4 * degrees(y * sin(2 * radians(l0)) - 2 * e * sin(radians(m))
                      + 4 * e * y * sin(radians(m)) * cos(2 * radians(l0))
                      - 0.5 * y * y * sin(4 * radians(l0)) - 1.25 * e * e * sin(2 * radians(m)))
    return decl, eot  # degrees, minutes


def event(day, zenith, rising):
    jd0 = datetime.datetime(day.year, day.month, day.day).toordinal() + 1721424.5
    minutes = 720.0  # start at noon UT
    for _ in range(3):
        decl, eot = sun(jd0 + minutes / 1440)
        ha = degrees(acos(cos(radians(zenith)) / (cos(radians(LAT)) * cos(radians(decl)))
                          - tan(radians(LAT)) * tan(radians(decl))))
        if rising:
            ha = -ha
        minutes = 720 - 4 * LON - eot + 4 * ha  # NOAA: solar noon (min UT) +/- 4 * hour angle
    t = datetime.datetime(day.year, day.month, day.day) + datetime.timedelta(minutes=minutes)
    return (t + datetime.timedelta(microseconds=500000)).strftime("%Y-%m-%dT%H:%M:%SZ")


print("# date,sunrise_utc,sunset_utc,civil_dawn_utc,civil_dusk_utc (NOAA equations, SOURCE.md)")
d = datetime.date(2026, 1, 1)
while d.year == 2026:
    print(",".join([d.isoformat(), event(d, 90.833, True), event(d, 90.833, False),
                    event(d, 96.0, True), event(d, 96.0, False)]))
    d += datetime.timedelta(days=1)
