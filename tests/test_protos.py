from payplane.common.v1 import common_pb2


def test_money_is_integer_minor_units_with_currency() -> None:
    money = common_pb2.Money(amount_minor=1099, currency="usd")
    decoded = common_pb2.Money.FromString(money.SerializeToString())
    assert decoded.amount_minor == 1099 and decoded.currency == "usd"
    field = common_pb2.Money.DESCRIPTOR.fields_by_name["amount_minor"]
    assert field.type == field.TYPE_INT64
