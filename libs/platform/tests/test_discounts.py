"""A tenant's discount rules in the tenants file: kept in file order with exact decimals, and every
mistake refused at load naming the tenant, the rule and the field."""

from decimal import Decimal

import pytest

from libs.connectors.registry import default_registry
from libs.platform.config import ConfigError
from libs.platform.discounts import DiscountRule
from libs.platform.tenants import TenantDirectory

RULES = """
[tenants.acme.accounts]

[[tenants.acme.discount_rules]]
name = "club-members-tasting"
when_club = "Reserve Club"
experiences = ["TASTING-FLIGHT", "exp-42"]
percent_off = "20"

[[tenants.acme.discount_rules]]
name = "trade-guests"
when_customer_type = "Trade"
amount_off = "10.00"

[[tenants.acme.discount_rules]]
name = "spring-promo"
when_promo_code = "SPRING25"
percent_off = 25
"""


def load(tmp_path, body: str) -> TenantDirectory:
    path = tmp_path / "tenants.toml"
    path.write_text(body)
    return TenantDirectory.load(path, default_registry())


def test_rules_are_kept_in_file_order_with_exact_amounts(tmp_path):
    rules = load(tmp_path, RULES)["acme"].discount_rules

    assert rules == (
        DiscountRule("club-members-tasting", when_club="Reserve Club",
                     experiences=frozenset({"tasting-flight", "exp-42"}), percent_off=Decimal("20")),
        DiscountRule("trade-guests", when_customer_type="Trade", amount_off=Decimal("10.00")),
        DiscountRule("spring-promo", when_promo_code="SPRING25", percent_off=Decimal("25")),
    )  # fmt: skip
    assert f"{rules[1].amount_off:f}" == "10.00"


def test_a_tenant_without_rules_has_none(tmp_path):
    assert load(tmp_path, "[tenants.acme.accounts]\n")["acme"].discount_rules == ()


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ('name = "r"\npercent_off = "10"\namount_off = "5"', "#1 'r': give exactly one of percent_off and amount_off"),
        ('name = "r"\nwhen_club = "*"', "#1 'r': give exactly one of percent_off and amount_off"),
        ('name = "r"\npercent_off = "100.5"', "#1 'r' percent_off: must be at most 100, not 100.5"),
        ('name = "r"\npercent_off = "0"', "#1 'r' percent_off: must be above 0"),
        ('name = "r"\namount_off = "-5"', "#1 'r' amount_off: must be above 0"),
        ('name = "r"\namount_off = 9.99', "#1 'r' amount_off: must be a decimal string"),
        ('name = "r"\namount_off = "ten"', "#1 'r' amount_off: 'ten' is not a decimal number"),
        ('name = "r"\namount_off = "NaN"', "#1 'r' amount_off: must be above 0"),
        ('name = "r"\npercent_off = "5"\nwhen_klub = "x"', "#1 'r': unknown key(s) 'when_klub'"),
        ('name = "r"\npercent_off = "5"\nexperiences = []', "#1 'r' experiences: must be a non-empty list"),
        ('name = "r"\npercent_off = "5"\nwhen_promo_code = " "', "#1 'r' when_promo_code: must be a non-empty"),
        ('percent_off = "5"', "#1 name: must be a non-empty string"),
    ],
)
def test_a_wrong_rule_is_refused_naming_tenant_rule_and_field(tmp_path, rule, says):
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, f"[tenants.acme.accounts]\n\n[[tenants.acme.discount_rules]]\n{rule}\n")

    assert str(refused.value).startswith("tenant 'acme' [[discount_rules]] ")
    assert says in str(refused.value)


def test_two_rules_of_one_name_are_refused(tmp_path):
    twice = '[[tenants.acme.discount_rules]]\nname = "r"\npercent_off = "5"\n'

    with pytest.raises(ConfigError, match="tenant 'acme' \\[\\[discount_rules\\]\\]: two rules are named 'r'"):
        load(tmp_path, "[tenants.acme.accounts]\n" + twice + twice)
