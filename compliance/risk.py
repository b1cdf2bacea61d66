"""The KYC risk rating: documented factors, each with its points and the words
that explain it, and the level they add up to.

| factor | points |
|---|---|
| country of residence or registration on the country risk list | high 3, medium 1 |
| politically exposed person | 3 |
| occupation or industry | high 2, medium 1 |
| organisation (ownership and control to understand) | 1 |
| confirmed watch-list match | makes the rating high whatever the points |

Points add up to the level: HIGH_FROM or more is high, MEDIUM_FROM or more is
medium, less is low. An officer may override the result with a reason
(compliance.services.kyc_risk_override); the computed rating and its factors
stay visible next to the override.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from customers.models import Customer

from .models import CountryRisk, KycCase, Occupation, RiskLevel, ScreeningHit

MEDIUM_FROM = 2
HIGH_FROM = 3

COUNTRY_POINTS = {RiskLevel.HIGH: 3, RiskLevel.MEDIUM: 1, RiskLevel.LOW: 0}
PEP_POINTS = 3
ORGANIZATION_POINTS = 1
OCCUPATION_POINTS = {RiskLevel.HIGH: 2, RiskLevel.MEDIUM: 1, RiskLevel.LOW: 0}

OCCUPATION_RISK: dict[str, str] = {
    Occupation.EMPLOYED: RiskLevel.LOW,
    Occupation.SELF_EMPLOYED: RiskLevel.LOW,
    Occupation.RETIRED: RiskLevel.LOW,
    Occupation.STUDENT: RiskLevel.LOW,
    Occupation.OTHER: RiskLevel.LOW,
    Occupation.PUBLIC_OFFICIAL: RiskLevel.MEDIUM,
    Occupation.LEGAL_ACCOUNTING: RiskLevel.MEDIUM,
    Occupation.REAL_ESTATE: RiskLevel.MEDIUM,
    Occupation.CASH_INTENSIVE: RiskLevel.MEDIUM,
    Occupation.CHARITY: RiskLevel.MEDIUM,
    Occupation.MONEY_SERVICES: RiskLevel.HIGH,
    Occupation.GAMBLING: RiskLevel.HIGH,
    Occupation.CRYPTO_ASSETS: RiskLevel.HIGH,
    Occupation.ARMS_DEFENCE: RiskLevel.HIGH,
    Occupation.PRECIOUS_METALS: RiskLevel.HIGH,
}


@dataclass(frozen=True)
class RiskFactor:
    code: str
    label: str
    points: int = 0
    forces_high: bool = False


@dataclass(frozen=True)
class RiskRating:
    level: str
    score: int
    factors: list[RiskFactor]

    def factors_as_json(self) -> list[dict]:
        return [asdict(factor) for factor in self.factors]


def _level(score: int, *, forced_high: bool) -> str:
    if forced_high or score >= HIGH_FROM:
        return RiskLevel.HIGH
    if score >= MEDIUM_FROM:
        return RiskLevel.MEDIUM
    return RiskLevel.LOW


def risk_rating_compute(*, case: KycCase, customer: Customer | None = None) -> RiskRating:
    """The rating the documented factors give this case now (two queries)."""
    customer = customer or case.customer
    factors: list[RiskFactor] = []

    country = str(customer.country or "")
    if country:
        listed = CountryRisk.objects.filter(country=country).first()
        level = listed.level if listed else RiskLevel.LOW
        name = customer.country.name
        if listed:
            why = f" ({listed.note})" if listed.note else ""
            label = f"Country {name} is {RiskLevel(level).label.lower()} risk on the list{why}"
        else:
            label = f"Country {name} is not on the country risk list"
        factors.append(RiskFactor("country", label, COUNTRY_POINTS[level]))
    else:
        factors.append(RiskFactor("country", "No country of residence or registration known"))

    if case.pep:
        factors.append(RiskFactor("pep", "Politically exposed person", PEP_POINTS))

    if case.occupation:
        level = OCCUPATION_RISK.get(case.occupation, RiskLevel.LOW)
        label = (
            f"{Occupation(case.occupation).label}: {RiskLevel(level).label.lower()}-risk "
            "occupation or industry"
        )
        factors.append(RiskFactor("occupation", label, OCCUPATION_POINTS[level]))
    else:
        factors.append(RiskFactor("occupation", "Occupation or industry not stated"))

    if customer.kind == Customer.Kind.ORGANIZATION:
        factors.append(
            RiskFactor(
                "organization",
                "Organisation: its ownership and control must be understood",
                ORGANIZATION_POINTS,
            )
        )

    for entry_name, list_name, reference in ScreeningHit.objects.filter(
        customer=customer, status=ScreeningHit.Status.CONFIRMED
    ).values_list("entry__name", "entry__list_name", "entry__reference"):
        factors.append(
            RiskFactor(
                "watchlist",
                f"Confirmed watch-list match: {entry_name} ({list_name} {reference})",
                forces_high=True,
            )
        )

    score = sum(factor.points for factor in factors)
    forced = any(factor.forces_high for factor in factors)
    return RiskRating(level=_level(score, forced_high=forced), score=score, factors=factors)


def risk_explanation(level: str) -> str:
    return (
        f"{RiskLevel(level).label}: points add up to low below {MEDIUM_FROM}, medium from "
        f"{MEDIUM_FROM}, high from {HIGH_FROM}; a confirmed watch-list match is always high."
    )
