"""marshmallow schemas for a form definition file."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

FIELD_TYPES = ("category", "photos", "building", "text", "textarea", "integer", "choice")
NAME = validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$",
                       error="must be lower-case letters, digits and _, starting with a letter")


class LabelSchema(Schema):
    zh = fields.String(required=True, validate=validate.Length(min=1, max=60))
    en = fields.String(required=True, validate=validate.Length(min=1, max=80))


class FormHeaderSchema(Schema):
    id = fields.String(required=True, validate=NAME)
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    title = fields.Nested(LabelSchema, required=True)


class CategorySchema(Schema):
    code = fields.String(required=True, validate=NAME)
    label = fields.Nested(LabelSchema, required=True)
    icon = fields.String(load_default="", validate=validate.Length(max=4))
    deadline_hours = fields.Integer(required=True, strict=True,
                                    validate=validate.Range(min=1, max=24 * 90))


class ChoiceSchema(Schema):
    value = fields.String(required=True, validate=NAME)
    label = fields.Nested(LabelSchema, required=True)


class FieldSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.OneOf(FIELD_TYPES))
    required = fields.Boolean(load_default=False)
    label = fields.Nested(LabelSchema, required=True)
    hint = fields.Nested(LabelSchema, load_default=None)
    max_length = fields.Integer(strict=True, validate=validate.Range(min=1, max=5000),
                                load_default=None)
    choices = fields.List(fields.Nested(ChoiceSchema), load_default=None)
    # Where the answer is kept (formdefs/store.py): "answers" (the default) or
    # "column:<name>" for one of the item's columns; checked against the model by the loader.
    store = fields.String(load_default=None, validate=validate.Regexp(
        r"^(answers|column:[a-z][a-z0-9_]{0,39})$",
        error='must be "answers" or "column:<name>", e.g. "column:floor"'))

    @validates_schema
    def _choices_for_choice_fields(self, data, **kwargs):
        if data.get("type") == "choice" and not data.get("choices"):
            raise ValidationError("a choice field needs a non-empty 'choices' list", "choices")
        if data.get("type") != "choice" and data.get("choices"):
            raise ValidationError("only choice fields take 'choices'", "choices")


class FormFileSchema(Schema):
    form = fields.Nested(FormHeaderSchema, required=True)
    categories = fields.List(fields.Nested(CategorySchema), required=True,
                             validate=validate.Length(min=1))
    fields_ = fields.List(fields.Nested(FieldSchema), required=True, data_key="fields",
                          validate=validate.Length(min=1))
