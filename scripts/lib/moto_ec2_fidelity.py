"""EC2 as EC2 answers, where moto differs in ways vpc-lease relies on.

CreateRoute to a destination the table already routes: EC2 refuses it with 400
RouteAlreadyExists, "The route identified by <destination> already exists.", whatever the
target. moto 5.x checks this only for IPv4 destinations whose target is not a network
interface (ec2/models/route_tables.py, create_route skips __validate_destination_cidr_block
when NetworkInterfaceId is given) and never for DestinationIpv6CidrBlock: it silently
overwrites the route, which would hide every create-over-a-foreign-route bug from the tests.

The check runs inside the CreateRoute request handler, so under moto_serialized.py's lock
the look-up and the write are one atomic step, as in EC2. moto's own internal create_route
calls (local routes of new tables and CIDR associations) are left alone.

moto imports its EC2 code on the first EC2 request; importing it here would add that time
(half a minute on a loaded machine) to every start-up, also of processes that never call EC2.
So the patch is applied as moto imports the module, through an import hook.
"""

from __future__ import annotations

import importlib.abc
import ipaddress
import sys
from typing import Any

_MODULE = "moto.ec2.responses.route_tables"


def _route_already_exists(destination: str) -> Exception:
    # EC2's answer, word for word (400, with the final period). moto serialises an error by
    # the module its class lives in, so this is moto's own EC2 error class, not a subclass.
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError("RouteAlreadyExists", f"The route identified by {destination} already exists.")


def _network(cidr: str | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if not cidr:
        return None
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None  # malformed: moto's own validation answers it


def _taken(route_table: Any, destination: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    for route in route_table._routes.values():
        for existing in (route.destination_cidr_block, route.destination_ipv6_cidr_block):
            if _network(existing) == destination:
                return True
    return False


def _patch(route_tables: Any) -> None:
    from moto.ec2.exceptions import EC2ClientError

    original = route_tables.create_route

    def create_route(self: Any) -> Any:
        requested = self._get_param("DestinationCidrBlock") or self._get_param("DestinationIpv6CidrBlock")
        destination = _network(requested)
        if destination is not None:
            try:
                route_table = self.ec2_backend.get_route_table(self._get_param("RouteTableId"))
            except EC2ClientError:
                route_table = None  # unknown table: moto answers InvalidRouteTableID.NotFound
            if route_table is not None and _taken(route_table, destination):
                raise _route_already_exists(requested)
        return original(self)

    route_tables.create_route = create_route


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Lets the other finders find moto's module, and patches it right after it executes."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            _patch(module.RouteTables)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def install() -> None:
    if _MODULE in sys.modules:
        _patch(sys.modules[_MODULE].RouteTables)
    else:
        sys.meta_path.insert(0, _PatchOnImport())
