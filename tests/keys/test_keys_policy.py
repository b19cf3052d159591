"""Risk policy: order checks, parsing, and loosening detection."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandex.keys.errors import InvalidKeySpec, InvalidPolicy, PolicyViolation
from sandex.keys.policy import MAX_SYMBOLS, Mode, RiskPolicy, parse_notional, parse_symbols

NO_PRIVILEGE = "has no operation privilege"


def order(policy: RiskPolicy, symbol="BTCUSDT", notional="100", open_orders=0) -> None:
    policy.check_order(symbol=symbol, notional=Decimal(notional), open_orders=open_orders)


def violation(policy: RiskPolicy, **kwargs) -> PolicyViolation:
    with pytest.raises(PolicyViolation) as info:
        order(policy, **kwargs)
    return info.value


# -- check_order --------------------------------------------------------------------------


def test_unrestricted_policy_allows_anything():
    order(RiskPolicy(), symbol="ANYTHING", notional="1000000000", open_orders=99_999)


def test_symbol_allowlist():
    policy = RiskPolicy(symbols=frozenset({"BTCUSDT", "ETHUSDT"}))
    order(policy, symbol="BTCUSDT")
    order(policy, symbol="ETHUSDT")
    err = violation(policy, symbol="DOGEUSDT")
    assert err.limit == "symbols"
    assert NO_PRIVILEGE in str(err)
    assert "DOGEUSDT" in str(err)


def test_max_notional_boundary():
    policy = RiskPolicy(max_notional=Decimal("1000"))
    order(policy, notional="999.99999999")
    order(policy, notional="1000")
    order(policy, notional="1000.000")
    err = violation(policy, notional="1000.00000001")
    assert err.limit == "max_notional"
    assert "1000.00000001" in str(err)


def test_max_notional_compares_decimals_exactly():
    # 0.1 + 0.2 is exactly 0.3 in Decimal; a float comparison would refuse it
    policy = RiskPolicy(max_notional=Decimal("0.3"))
    policy.check_order(symbol="X1", notional=Decimal("0.1") + Decimal("0.2"), open_orders=0)


def test_max_open_orders_at_the_limit_refused():
    policy = RiskPolicy(max_open_orders=3)
    order(policy, open_orders=0)
    order(policy, open_orders=2)
    err = violation(policy, open_orders=3)
    assert err.limit == "max_open_orders"
    assert violation(policy, open_orders=4).limit == "max_open_orders"


def test_max_open_orders_of_one():
    policy = RiskPolicy(max_open_orders=1)
    order(policy, open_orders=0)
    assert violation(policy, open_orders=1).limit == "max_open_orders"


@pytest.mark.parametrize("mode", [Mode.CANCEL_ONLY, Mode.FROZEN])
def test_non_normal_modes_refuse_every_order(mode):
    policy = RiskPolicy(mode=mode)
    err = violation(policy)
    assert err.limit == "mode"
    assert NO_PRIVILEGE in str(err)
    assert mode.value in str(err)


def test_mode_is_checked_before_the_other_rules():
    policy = RiskPolicy(
        symbols=frozenset({"BTCUSDT"}), max_notional=Decimal(1), max_open_orders=1, mode=Mode.FROZEN
    )
    assert violation(policy, symbol="ETHUSDT", notional="5", open_orders=9).limit == "mode"


def test_policy_violation_is_not_an_invalid_spec():
    err = violation(RiskPolicy(mode=Mode.FROZEN))
    assert not isinstance(err, InvalidKeySpec)


@pytest.mark.parametrize("bad", [0, -1, 100_001])
def test_max_open_orders_range(bad):
    with pytest.raises(InvalidPolicy):
        RiskPolicy(max_open_orders=bad)
    RiskPolicy(max_open_orders=1)
    RiskPolicy(max_open_orders=100_000)


@pytest.mark.parametrize("bad", ["0", "-5", "NaN", "Infinity", "-Infinity"])
def test_max_notional_must_be_positive_and_finite(bad):
    with pytest.raises(InvalidPolicy):
        RiskPolicy(max_notional=Decimal(bad))


# -- parsing ------------------------------------------------------------------------------


def test_parse_symbols():
    assert parse_symbols("btcusdt, ETHUSDT,,BTCUSDT ") == frozenset({"BTCUSDT", "ETHUSDT"})
    assert parse_symbols(["1000SHIBUSDT"]) == frozenset({"1000SHIBUSDT"})
    assert parse_symbols("") is None
    assert parse_symbols(" , ") is None
    assert parse_symbols([]) is None


@pytest.mark.parametrize("bad", ["BTC-USDT", "BTC/USDT", "B", "A" * 21, "BTC USDT", "ÉTHUSDT"])
def test_parse_symbols_rejects_invalid(bad):
    with pytest.raises(InvalidPolicy) as info:
        parse_symbols(f"BTCUSDT,{bad}")
    assert bad.upper() in str(info.value)


def test_parse_symbols_limit():
    many = [f"SYM{i}USDT" for i in range(MAX_SYMBOLS)]
    assert len(parse_symbols(many)) == MAX_SYMBOLS
    with pytest.raises(InvalidPolicy, match="at most 200"):
        parse_symbols([*many, "EXTRAUSDT"])


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("100", Decimal(100)),
        (" 2500.50 ", Decimal("2500.5")),
        ("0.0001", Decimal("0.0001")),
        (Decimal("7.000"), Decimal(7)),
        ("1e3", Decimal(1000)),
    ],
)
def test_parse_notional(text, value):
    assert parse_notional(text) == value


def test_parse_notional_none_means_no_cap():
    assert parse_notional(None) is None


@pytest.mark.parametrize("bad", ["", "abc", "1,000", "0", "-1", "0.000", "NaN", "inf", "sNaN"])
def test_parse_notional_rejects(bad):
    with pytest.raises(InvalidPolicy) as info:
        parse_notional(bad)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize(
    ("text", "mode"),
    [("normal", Mode.NORMAL), (" CANCEL_ONLY ", Mode.CANCEL_ONLY), ("Frozen", Mode.FROZEN)],
)
def test_mode_parse(text, mode):
    assert Mode.parse(text) is mode


@pytest.mark.parametrize("bad", ["", "cancel-only", "paused"])
def test_mode_parse_rejects_unknown(bad):
    with pytest.raises(InvalidPolicy, match="NORMAL, CANCEL_ONLY, FROZEN"):
        Mode.parse(bad)


def test_mode_strictness_order():
    assert Mode.NORMAL.strictness < Mode.CANCEL_ONLY.strictness < Mode.FROZEN.strictness


# -- loosened_in --------------------------------------------------------------------------

STRICT = RiskPolicy(
    symbols=frozenset({"BTCUSDT", "ETHUSDT"}),
    max_notional=Decimal(1000),
    max_open_orders=10,
    mode=Mode.CANCEL_ONLY,
)


def test_same_or_stricter_policy_is_not_looser():
    assert STRICT.loosened_in(STRICT) == []
    stricter = RiskPolicy(
        symbols=frozenset({"BTCUSDT"}),
        max_notional=Decimal(10),
        max_open_orders=1,
        mode=Mode.FROZEN,
    )
    assert STRICT.loosened_in(stricter) == []
    assert RiskPolicy().loosened_in(STRICT) == []
    assert RiskPolicy().loosened_in(RiskPolicy()) == []


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"symbols": frozenset({"BTCUSDT", "ETHUSDT", "SOLUSDT"})}, "symbol allowlist"),
        ({"symbols": frozenset({"SOLUSDT"})}, "symbol allowlist"),
        ({"symbols": None}, "symbol allowlist"),
        ({"max_notional": Decimal("1000.01")}, "max notional"),
        ({"max_notional": None}, "max notional"),
        ({"max_open_orders": 11}, "max open orders"),
        ({"max_open_orders": None}, "max open orders"),
        ({"mode": Mode.NORMAL}, "mode"),
    ],
)
def test_each_loosened_field_is_reported(change, what):
    fields = {
        "symbols": STRICT.symbols,
        "max_notional": STRICT.max_notional,
        "max_open_orders": STRICT.max_open_orders,
        "mode": STRICT.mode,
        **change,
    }
    assert STRICT.loosened_in(RiskPolicy(**fields)) == [what]


def test_unfreezing_to_cancel_only_is_looser():
    assert RiskPolicy(mode=Mode.FROZEN).loosened_in(RiskPolicy(mode=Mode.CANCEL_ONLY)) == ["mode"]


def test_everything_loosened_at_once():
    assert STRICT.loosened_in(RiskPolicy()) == [
        "symbol allowlist",
        "max notional",
        "max open orders",
        "mode",
    ]


@pytest.mark.parametrize(
    ("text", "shown"), [("1000", "1000"), ("50000", "50000"), ("100", "100"), ("2500.50", "2500.5")]
)
def test_parsed_notional_cap_is_shown_as_typed_not_in_exponent_form(text, shown):
    """The cap is stored and shown with str(); ``--max-notional 1000`` must not read "1E+3"."""
    cap = parse_notional(text)
    assert str(cap) == shown
    err = violation(RiskPolicy(max_notional=cap), notional="999999")
    assert f"max order notional {shown}." in str(err)


@pytest.mark.parametrize(
    "text", ["1e30", "123456789012345678901234567890", "0.000000000000000000000000000001"]
)
def test_parse_notional_extreme_values_are_exact_or_refused(text):
    """A cap is never silently rounded to another value, and never crashes with a raw
    decimal error: it is kept exactly, or refused with InvalidPolicy."""
    try:
        value = parse_notional(text)
    except InvalidPolicy:
        return
    assert value == Decimal(text)
