"""The agents: pure calculations over the facility's data, and LLM-backed ones.

A calculation agent is `fn(facility, upstream) -> (result, citations)`; an LLM agent is a
name and a task, asked through the platform's LLM client (see `platform.py`).
"""

import math

EMISSION_FACTORS = "DEFRA 2023 greenhouse gas conversion factors"
SECTOR_BENCHMARK = "CIBSE TM46 energy benchmarks"
METER_DATA = "facility meter readings"
VIBRATION_STANDARD = "ISO 10816-3 vibration severity"
SOLAR_DATA = "PVGIS solar irradiation data"
HEAT_PUMP_DATA = "IEA heat pump performance report 2022"


def emissions(facility, upstream):
    fuel = facility["fuel_litres"] * 2.68
    power = facility["electricity_kwh"] * 0.207
    return {"fuel_kg_co2e": round(fuel, 1), "electricity_kg_co2e": round(power, 1),
            "total_kg_co2e": round(fuel + power, 1)}, [EMISSION_FACTORS, METER_DATA]


def benchmark(facility, upstream):
    intensity = facility["electricity_kwh"] / max(facility["floor_area_m2"], 1)
    typical = 95.0
    return {"kwh_per_m2": round(intensity, 1), "typical_kwh_per_m2": typical,
            "ratio": round(intensity / typical, 2)}, [SECTOR_BENCHMARK, METER_DATA]


def energy(facility, upstream):
    kwh = facility["electricity_kwh"]
    peak = facility.get("peak_share", 0.4)
    return {"annual_kwh": kwh, "peak_kwh": round(kwh * peak), "off_peak_kwh": round(kwh * (1 - peak)),
            "shiftable_kwh": round(kwh * peak * 0.25)}, [METER_DATA]


def solar(facility, upstream):
    roof = facility["floor_area_m2"] * 0.5
    yearly = roof * 0.2 * 1000  # 200 W/m2 panels, ~1000 full-load hours
    return {"roof_m2": roof, "yearly_kwh": round(yearly), "covers": round(min(yearly / facility["electricity_kwh"], 1.0), 2)}, \
        [SOLAR_DATA]


def heat_pump(facility, upstream):
    heat_kwh = facility["fuel_litres"] * 10.0
    return {"heat_kwh": heat_kwh, "electricity_needed_kwh": round(heat_kwh / 3.2),
            "kg_co2e_saved": round(facility["fuel_litres"] * 2.68 - heat_kwh / 3.2 * 0.207, 1)}, \
        [HEAT_PUMP_DATA, EMISSION_FACTORS]


def maintenance(facility, upstream):
    sensors = facility.get("sensors", {})
    vibration = float(sensors.get("vibration_mm_s", 2.0))
    temperature = float(sensors.get("temperature_c", 60.0))
    risk = 1 / (1 + math.exp(-(0.9 * (vibration - 4.5) + 0.08 * (temperature - 75))))
    return {"vibration_mm_s": vibration, "temperature_c": temperature, "failure_risk": round(risk, 3),
            "zone": "A" if vibration < 2.3 else "B" if vibration < 4.5 else "C" if vibration < 7.1 else "D"}, \
        [VIBRATION_STANDARD]


def forecast(facility, upstream):
    """Twelve months of consumption from the history, by a least-squares trend. The history
    is materialised in memory (fast); under memory pressure the platform re-runs this with
    `streaming=True`, which keeps only running sums."""
    return trend(facility, streaming=False)


def trend(facility, streaming):
    points = int(facility.get("history_points", 36))
    base = facility["electricity_kwh"] / 12

    def series():
        return (base * (1 + 0.01 * (i % 12 - 6) / 6) + 0.5 * i for i in range(points))

    if streaming:
        n = sx = sy = sxy = sxx = 0.0
        for i, y in enumerate(series()):
            n += 1; sx += i; sy += y; sxy += i * y; sxx += i * i
    else:
        ys = list(series())
        xs = list(range(len(ys)))
        n, sx, sy = len(ys), sum(xs), sum(ys)
        sxy, sxx = sum(x * y for x, y in zip(xs, ys)), sum(x * x for x in xs)
    slope = (n * sxy - sx * sy) / max(n * sxx - sx * sx, 1)
    intercept = (sy - slope * sx) / max(n, 1)
    return {"next_12_months_kwh": round(sum(intercept + slope * (n + m) for m in range(12))),
            "slope_kwh_per_month": round(slope, 3), "history_points": points}, [METER_DATA]


CALCULATION = {
    "emissions": emissions,
    "benchmark": benchmark,
    "energy": energy,
    "solar": solar,
    "heat_pump": heat_pump,
    "maintenance": maintenance,
    "forecast": forecast,
}

LLM = {
    "analyst": "Interpret these results for a facility manager: a summary and the key findings.",
    "advisor": "Recommend measures that reduce emissions or cost, with their expected effect.",
    "reporter": "Write the report's executive summary from these results.",
}

# Each workflow is a list of stages; the agents of a stage run in parallel, stages in
# sequence. A critical step's failure stops the workflow and rolls its records back.
WORKFLOWS = {
    "carbon_audit": [["emissions"], ["benchmark"], ["forecast"], ["analyst"], ["reporter"]],
    "decarbonisation": [["emissions"], ["benchmark"], ["solar", "heat_pump"], ["forecast"], ["advisor"], ["reporter"]],
    "energy_optimisation": [["energy"], ["forecast"], ["advisor"], ["reporter"]],
    "predictive_maintenance": [["maintenance"], ["forecast"], ["analyst"]],
}
OPTIONAL = {"benchmark", "forecast"}
