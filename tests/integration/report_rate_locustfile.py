"""The report test's users under the open model (run headless with --scenario rate): Visitor's tasks,
each started by an arrival."""

from report_locustfile import Visitor

from lab.shapes import ArrivalUser


class ArrivingVisitor(ArrivalUser, Visitor):
    pass
