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
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.route_tables import RouteTables


def _route_already_exists(destination: str) -> EC2ClientError:
    # EC2's answer, word for word (400, with the final period). moto serialises an error by
    # the module its class lives in, so this is moto's own EC2 error class, not a subclass.
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


def install() -> None:
    original: Callable[[RouteTables], Any] = RouteTables.create_route

    def create_route(self: RouteTables) -> Any:
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

    RouteTables.create_route = create_route  # type: ignore[method-assign]
