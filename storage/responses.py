from rest_framework import serializers as s

from portal.api.responses import ResponseSerializer, Uuid


class OsTypeResponse(ResponseSerializer):
    object_name = "ostype"
    id = Uuid(source="uuid", help_text="the ID of the OS type")
    description = s.CharField(help_text="the name/description of the OS type")
    name = s.CharField(source="description", help_text="the name of the OS type")
    oscategoryid = Uuid(source="category.uuid", help_text="the ID of the OS category")
    oscategoryname = s.CharField(source="category.name", help_text="the name of the OS category")
    isuserdefined = s.BooleanField(source="is_user_defined", help_text="is the guest OS user defined")


class OsCategoryResponse(ResponseSerializer):
    object_name = "oscategory"
    id = Uuid(source="uuid", help_text="the ID of the OS category")
    name = s.CharField(help_text="the name of the OS category")
