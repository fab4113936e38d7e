"""The demo catalogue, built from the domain brief (shared/domain/README.md): the G60 fund, the
alliance's credit products (科创贷, 质量贷, 人才贷), an equity investor, a leasing product, and
enterprises with financing needs across the nine cities and the corridor's sectors. Plain data,
posted through the public API by `seed.py`."""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from g60_contracts.types import uscc_check_char

FUNDERS: list[dict[str, Any]] = [
    {
        "key": "g60-fund",
        "funder": {
            "name": "长三角G60科创走廊基金 (G60 fund)",
            "kind": "g60_fund",
            "city": "shanghai",
            "description": "RMB 10 bn, set up jointly by the nine cities",
        },
        "offers": [
            {
                "name": "G60 fund equity (hard tech, new materials, new energy)",
                "instrument": "equity",
                "ticket_min_cny": 10_000_000,
                "ticket_max_cny": 100_000_000,
                "capacity_cny": 10_000_000_000,
                "max_deals": 200,
                "sectors": [
                    "integrated_circuits",
                    "new_materials",
                    "new_energy",
                    "aerospace",
                    "satellite_internet",
                    "high_end_equipment",
                ],
                "stages": ["series_a", "series_b", "series_c", "growth"],
                "requirements": {
                    "qualifications_any": [
                        "high_tech_enterprise",
                        "specialized_sme",
                        "little_giant",
                    ],
                    "min_years": 2,
                },
                "pricing": {"max_equity_share": 0.2},
                "decision_days": 45,
                "response_deadline_days": 30,
                "preferences": {
                    "priority_cities": ["shanghai"],
                    "priority_sectors": ["new_materials", "integrated_circuits"],
                },
            }
        ],
    },
    {
        "key": "alliance-bank",
        "funder": {
            "name": "G60金融服务联盟 合作银行 (alliance bank)",
            "kind": "bank",
            "city": "shanghai",
        },
        "offers": [
            {
                "name": "科创贷 (sci-tech innovation loan)",
                "instrument": "credit_loan",
                "ticket_min_cny": 1_000_000,
                "ticket_max_cny": 30_000_000,
                "capacity_cny": 2_000_000_000,
                "stages": ["angel", "series_a", "series_b", "series_c", "growth"],
                "requirements": {
                    "qualifications_any": ["high_tech_enterprise", "tech_sme"],
                    "min_revenue_cny": 5_000_000,
                    "min_years": 2,
                    "max_debt_ratio": 0.7,
                },
                "pricing": {"rate_bp": 380},
                "decision_days": 10,
            },
            {
                "name": "质量贷 (quality loan)",
                "instrument": "credit_loan",
                "ticket_min_cny": 2_000_000,
                "ticket_max_cny": 50_000_000,
                "capacity_cny": 1_500_000_000,
                "stages": ["series_b", "series_c", "growth", "pre_ipo"],
                "requirements": {
                    "qualifications_any": ["specialized_sme", "little_giant"],
                    "min_revenue_cny": 20_000_000,
                    "min_years": 3,
                },
                "pricing": {"rate_bp": 350},
                "decision_days": 14,
            },
            {
                "name": "人才贷 (talent loan)",
                "instrument": "credit_loan",
                "ticket_min_cny": 500_000,
                "ticket_max_cny": 10_000_000,
                "capacity_cny": 600_000_000,
                "stages": ["seed", "angel", "series_a", "series_b"],
                "pricing": {"rate_bp": 420},
                "decision_days": 7,
            },
        ],
    },
    {
        "key": "yangtze-ventures",
        "funder": {
            "name": "长三角科创投资 (Yangtze delta ventures)",
            "kind": "vc",
            "city": "hangzhou",
        },
        "offers": [
            {
                "name": "Early-stage equity",
                "instrument": "equity",
                "ticket_min_cny": 3_000_000,
                "ticket_max_cny": 30_000_000,
                "capacity_cny": 800_000_000,
                "max_deals": 40,
                "sectors": [
                    "biomedicine",
                    "integrated_circuits",
                    "low_altitude_economy",
                    "satellite_internet",
                    "instruments_meters",
                    "green_finance",
                    "new_energy",
                ],
                "stages": ["seed", "angel", "series_a", "series_b"],
                "pricing": {"max_equity_share": 0.25},
                "decision_days": 30,
                "preferences": {"priority_cities": ["hangzhou", "hefei"]},
            },
            {
                "name": "Convertible growth note",
                "instrument": "convertible",
                "ticket_min_cny": 5_000_000,
                "ticket_max_cny": 60_000_000,
                "capacity_cny": 500_000_000,
                "stages": ["series_b", "series_c", "growth", "pre_ipo"],
                "pricing": {"max_equity_share": 0.12},
                "decision_days": 25,
            },
        ],
    },
    {
        "key": "g60-leasing",
        "funder": {"name": "G60融资租赁 (G60 leasing)", "kind": "leasing", "city": "suzhou"},
        "offers": [
            {
                "name": "Equipment finance lease",
                "instrument": "leasing",
                "ticket_min_cny": 2_000_000,
                "ticket_max_cny": 80_000_000,
                "capacity_cny": 1_000_000_000,
                "sectors": [
                    "high_end_equipment",
                    "new_energy",
                    "integrated_circuits",
                    "aerospace",
                    "instruments_meters",
                    "new_materials",
                    "low_altitude_economy",
                ],
                "requirements": {"min_years": 1, "collateral_required": ["equipment"]},
                "pricing": {"rate_bp": 520},
                "decision_days": 20,
            }
        ],
    },
]

CITIES = [
    "shanghai",
    "jiaxing",
    "hangzhou",
    "jinhua",
    "suzhou",
    "huzhou",
    "xuancheng",
    "wuhu",
    "hefei",
]
CITY_ZH = {
    "shanghai": "松江",
    "jiaxing": "嘉兴",
    "hangzhou": "杭州",
    "jinhua": "金华",
    "suzhou": "苏州",
    "huzhou": "湖州",
    "xuancheng": "宣城",
    "wuhu": "芜湖",
    "hefei": "合肥",
}
SECTORS = {
    "integrated_circuits": ("芯", "chip packaging line"),
    "instruments_meters": ("仪表", "micro flow meter production"),
    "new_materials": ("新材料", "carbon-fibre composite plant"),
    "satellite_internet": ("星联", "satellite ground terminals"),
    "aerospace": ("航宇", "aero-engine component machining"),
    "biomedicine": ("生物医药", "clinical trial of a biologic"),
    "new_energy": ("新能源", "solid-state battery pilot line"),
    "high_end_equipment": ("智能装备", "industrial robot assembly line"),
    "low_altitude_economy": ("低空", "eVTOL prototype certification"),
    "green_finance": ("绿色科技", "ESG data platform"),
}
# more needs at the stages the alliance's products serve, a few at the edges
STAGE_CYCLE = [
    "series_a",
    "seed",
    "series_b",
    "angel",
    "growth",
    "series_a",
    "series_c",
    "pre_ipo",
    "series_b",
]
QUALS = ["high_tech_enterprise", "tech_sme", "specialized_sme", "little_giant"]


def uscc(rng: random.Random, city_index: int) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "9131" + f"{city_index:02d}" + "17" + "".join(rng.choice(alphabet) for _ in range(9))
    return body + uscc_check_char(body)


def enterprises(n: int = 36, seed: int = 60) -> list[dict[str, Any]]:
    """`n` enterprises, each with one financing need, cycling through cities and sectors."""
    rng = random.Random(seed)
    out = []
    sector_names = list(SECTORS)
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        sector = sector_names[(i * 7) % len(sector_names)]
        stage = STAGE_CYCLE[i % len(STAGE_CYCLE)]
        founded = date(2010 + (i * 5) % 14, 1 + i % 12, 1 + (i * 11) % 28)
        revenue = [8_000_000, None, 12_000_000, 45_000_000, 180_000_000, 3_000_000][i % 6]
        held = {QUALS[i % 2]} | {QUALS[j] for j in (2, 3) if (i + j) % (j + 1) == 0}
        quals = [{"kind": q, "expires_on": "2028-12-31"} for q in QUALS if q in held]
        zh, purpose = SECTORS[sector]
        amount = [2_000_000, 5_000_000, 8_000_000, 20_000_000, 50_000_000][(i * 3) % 5]
        instruments = [
            ["credit_loan"],
            ["equity", "credit_loan"],
            ["credit_loan", "equity"],
            ["leasing", "credit_loan"],
            ["equity", "convertible"],
            ["credit_loan", "leasing"],
        ][i % 6]
        out.append(
            {
                "key": f"ent-{i:02d}",
                "enterprise": {
                    "name": f"{CITY_ZH[city]}{zh}科技有限公司 #{i + 1}",
                    "uscc": uscc(rng, i % 9),
                    "city": city,
                    "district": "Songjiang" if city == "shanghai" else None,
                    "sectors": [sector],
                    "founded_on": founded.isoformat(),
                    "headcount": 20 + (i * 37) % 400,
                    "annual_revenue_cny": revenue,
                    "rd_intensity": round(0.03 + (i % 7) * 0.02, 2),
                    "debt_ratio": None if i % 6 == 0 else round(0.2 + (i % 5) * 0.12, 2),
                    "qualifications": quals,
                    "collateral": [
                        ["ip"],
                        ["equipment"],
                        [],
                        ["property", "equipment"],
                        ["receivables"],
                    ][i % 5],
                },
                "project": {
                    "title": f"{purpose[0].upper()}{purpose[1:]} ({CITY_ZH[city]})",
                    "amount_cny": amount,
                    "instruments": instruments,
                    "stage": stage,
                    "sector": sector,
                    "purpose": purpose,
                    "term_months": 36,
                    "max_cost_bp": 600,
                    "max_dilution": 0.2 if "equity" in instruments else None,
                },
            }
        )
    return out
