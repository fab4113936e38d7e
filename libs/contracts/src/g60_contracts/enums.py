"""Vocabularies shared by every public contract. Values are lower snake case and never change
meaning; a new value is additive, a removed one is a breaking change (new contract version)."""

from enum import StrEnum


class City(StrEnum):
    shanghai = "shanghai"  # Songjiang district, the corridor's origin
    jiaxing = "jiaxing"
    hangzhou = "hangzhou"
    jinhua = "jinhua"
    suzhou = "suzhou"
    huzhou = "huzhou"
    xuancheng = "xuancheng"
    wuhu = "wuhu"
    hefei = "hefei"


class Sector(StrEnum):
    integrated_circuits = "integrated_circuits"
    instruments_meters = "instruments_meters"
    new_materials = "new_materials"
    satellite_internet = "satellite_internet"
    aerospace = "aerospace"
    biomedicine = "biomedicine"
    new_energy = "new_energy"
    high_end_equipment = "high_end_equipment"
    low_altitude_economy = "low_altitude_economy"
    green_finance = "green_finance"


class Stage(StrEnum):
    seed = "seed"
    angel = "angel"
    series_a = "series_a"
    series_b = "series_b"
    series_c = "series_c"
    growth = "growth"
    pre_ipo = "pre_ipo"


class Instrument(StrEnum):
    equity = "equity"
    credit_loan = "credit_loan"
    secured_loan = "secured_loan"
    ip_pledge_loan = "ip_pledge_loan"
    leasing = "leasing"
    convertible = "convertible"


class Qualification(StrEnum):
    high_tech_enterprise = "high_tech_enterprise"
    tech_sme = "tech_sme"
    specialized_sme = "specialized_sme"  # 专精特新
    little_giant = "little_giant"  # national 专精特新“小巨人”
    innovative_sme = "innovative_sme"  # 创新型中小企业
    gazelle = "gazelle"  # 瞪羚企业


class Collateral(StrEnum):
    property = "property"
    equipment = "equipment"
    ip = "ip"
    receivables = "receivables"


class FunderKind(StrEnum):
    g60_fund = "g60_fund"
    bank = "bank"
    vc = "vc"
    leasing = "leasing"
    guarantor = "guarantor"
    securities = "securities"


class ProjectStatus(StrEnum):
    open = "open"
    funded = "funded"
    withdrawn = "withdrawn"


class OfferStatus(StrEnum):
    active = "active"
    withdrawn = "withdrawn"


class MatchStatus(StrEnum):
    proposed = "proposed"
    agreed = "agreed"
    reserved = "reserved"
    rejected = "rejected"  # capacity could not be reserved
    closed = "closed"
    declined = "declined"
    expired = "expired"
    retracted = "retracted"  # the project or offer was withdrawn or no longer fits


class Role(StrEnum):
    operator = "operator"
    enterprise = "enterprise"
    funder = "funder"
    partner = "partner"
