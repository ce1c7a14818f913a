"""TransactWriteItems whose rollback costs what the transaction wrote, not the whole table.

moto 5's DynamoDBBackend.transact_write_items deep-copies every table a transaction
names, once per item, before it writes anything, so that it can put the copy back when
a condition fails. Its cost therefore grows with the table: on a table of a few thousand
lease items each grant takes moto a noticeable fraction of a second, and a large storm
measures moto instead of the design.

This replacement keeps moto's semantics and changes only the rollback bookkeeping:
- the same checks in the same order (at most 100 items, one operation per item, no item
  twice, the condition of each item evaluated against the item as it is at that point),
  the same writes (moto's own put_item / delete_item / update_item);
- the same answer: TransactionCanceledException with one CancellationReason per item, in
  order (None, ConditionalCheckFailed with the old item under ALL_OLD, or the error's name);
  a ValidationException or a repeated item is raised as such;
- all or nothing: before an item is first written, a deep copy of that one item (or the
  fact that it did not exist) is kept; on failure those items are put back in reverse
  order, and each touched table's stream records added by the failed transaction are
  dropped, as the table copy used to drop them.

The launcher (moto_serialized.py) installs it; moto runs one request at a time there, so
the transaction is atomic as a whole. If moto's internals ever differ from what this
expects, install() leaves moto's own implementation in place and says so on stderr.
"""

import copy
import sys
from typing import Any

from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.comparisons import get_filter_expression


class _Undo:
    """What the transaction changed so far: the items before their first write, per table."""

    def __init__(self, backend: DynamoDBBackend) -> None:
        self.backend = backend
        self.saved: list[tuple[str, DynamoType, Any, Any]] = []
        self.seen: set[tuple[str, str]] = set()
        self.stream_lengths: dict[str, int] = {}

    def keep(self, table_name: str, key: dict[str, Any]) -> None:
        table = self.backend.get_table(table_name)
        hash_value = DynamoType(key[table.hash_key_attr])
        range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        marker = (table_name, str(dict(sorted(key.items()))))
        if marker in self.seen:
            return
        self.seen.add(marker)
        if table_name not in self.stream_lengths and table.stream_shard is not None:
            self.stream_lengths[table_name] = len(table.stream_shard.items)
        current = table.get_item(hash_value, range_value)
        self.saved.append((table_name, hash_value, range_value, copy.deepcopy(current)))

    def rollback(self) -> None:
        for table_name, hash_value, range_value, before in reversed(self.saved):
            table = self.backend.tables[table_name]
            if range_value is not None:
                if before is None:
                    table.items.get(hash_value, {}).pop(range_value, None)
                    if hash_value in table.items and not table.items[hash_value]:
                        del table.items[hash_value]
                else:
                    table.items[hash_value][range_value] = before
            elif before is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = before
        for table_name, length in self.stream_lengths.items():
            shard = self.backend.tables[table_name].stream_shard
            if shard is not None:
                del shard.items[length:]


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _Undo(self)
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get("ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type != "ConditionCheck":
                undo.keep(table_name, key)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.rollback()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore
        except Exception as e:  # noqa: E722 as moto: any other error cancels with its name
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore

    if any(code is not None for code, _, _ in errors):
        undo.rollback()
        raise TransactionCanceledException(errors)


def install() -> None:
    """Replaces moto's transact_write_items, unless moto's internals are not the expected ones."""
    expected = ("tables", "get_table", "get_item", "put_item", "delete_item", "update_item")
    original = getattr(DynamoDBBackend, "transact_write_items", None)
    if original is None or not all(hasattr(DynamoDBBackend, name) or name == "tables" for name in expected):
        print("moto_dynamodb_fast_tx: unexpected moto version; keeping moto's own transactions", file=sys.stderr)
        return
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
