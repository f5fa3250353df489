"""Request bodies, validated by FastAPI (a bad field gives 422 naming it)."""

from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]


class Credentials(BaseModel):
    email: Email
    password: Annotated[str, Field(min_length=8, max_length=128)]


class OrderLine(BaseModel):
    item_id: Annotated[int, Field(gt=0)]
    quantity: Annotated[int, Field(gt=0, le=1000)]


class OrderRequest(BaseModel):
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=50)]
