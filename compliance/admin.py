"""User administration that refuses conflicting roles with a form error,
before the database-level guard in compliance.roles would have to."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from .roles import role_conflicts

User = get_user_model()


class RoleCheckingUserChangeForm(UserAdmin.form):
    def clean_groups(self):
        groups = self.cleaned_data.get("groups")
        messages = role_conflicts(group.name for group in groups or [])
        if messages:
            raise forms.ValidationError(messages)
        return groups


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class CimUserAdmin(UserAdmin):
    form = RoleCheckingUserChangeForm


@admin.register(Group)
class CimGroupAdmin(GroupAdmin):
    pass
