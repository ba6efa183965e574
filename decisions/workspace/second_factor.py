"""A second factor for admin accounts: a code from an authenticator app (TOTP, django-otp).

Anyone in the admin may set one up; once set up, every sign-in asks for it. ADMIN_SECOND_FACTOR_GROUPS
names the groups (e.g. the publishers and clinical reviewers, who put advice in front of
clinicians) who must have one: their admin pages send them to set it up before anything else.

django-otp keeps the devices, checks the codes (each code once, a little clock drift allowed) and
slows down guessing (a wrong code doubles the wait before the next try); its OTPMiddleware says
whether this session passed the second factor (`request.user.is_verified()`).
"""

from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

DEVICE_NAME = "Authenticator app"
# The pages a signed-in person can reach before passing the second factor.
_OPEN_PATHS = ("/admin/second-factor/", "/admin/logout/", "/admin/login/", "/admin/jsi18n/")


def required_for(user: AbstractBaseUser | AnonymousUser) -> bool:
    groups = {name.strip() for name in settings.ADMIN_SECOND_FACTOR_GROUPS if name.strip()}
    if not groups or not user.is_authenticated:
        return False
    return bool(user.groups.filter(name__in=groups).exists())  # type: ignore[attr-defined]


class SecondFactorMiddleware:
    """After sign-in: ask for the code (a device is set up) or for setting one up (it is required)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        user = request.user
        if (
            path.startswith("/admin/")
            and not path.startswith(_OPEN_PATHS)
            and user.is_authenticated
            and not user.is_verified()  # type: ignore[attr-defined]
        ):
            if user_has_device(user, confirmed=True):
                return _to("admin:second-factor-verify", request)
            if required_for(user):
                return _to("admin:second-factor-setup", request)
        return self.get_response(request)


def _to(name: str, request: HttpRequest) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(name)}?next={request.get_full_path()}")


def _next(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    # Only a path inside the admin: never an address elsewhere (an open redirect).
    return wanted if wanted.startswith("/admin/") and not wanted.startswith("//") else reverse("admin:index")


class CodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code from your authenticator app",
        error_messages={"invalid": "Enter the 6 digits your authenticator app shows now."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _checked(device: TOTPDevice, form: CodeForm) -> bool:
    """Whether the code is right; a refusal names the wait django-otp imposes after wrong codes."""
    allowed, details = device.verify_is_allowed()
    if not allowed:
        wait = (details or {}).get("locked_until")
        when = f" until {wait:%H:%M:%S} UTC" if wait else " for a little while"
        form.add_error("code", f"Too many wrong codes: wait{when}, then try again.")
        return False
    if not device.verify_token(form.cleaned_data["code"].strip()):
        form.add_error("code", "That code is not right, or it has already been used. Try the next one.")
        return False
    return True


def verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in, for an account with an authenticator app set up."""
    device = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
    if device is None:
        return HttpResponseRedirect(reverse("admin:second-factor-setup"))
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _checked(device, form):
        otp_login(request, device)
        return HttpResponseRedirect(_next(request))
    return _page(request, "verify", form, status=400 if form.errors else 200)


def setup(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator app: the key to enter (or the otpauth link), then one code from it."""
    if user_has_device(request.user, confirmed=True):
        if not request.user.is_verified():  # type: ignore[union-attr]
            return HttpResponseRedirect(reverse("admin:second-factor-verify"))
        return _page(request, "done", CodeForm())
    device, _ = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": DEVICE_NAME}
    )
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _checked(device, form):
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        otp_login(request, device)
        return HttpResponseRedirect(_next(request))
    return _page(request, "setup", form, device=device, status=400 if form.errors else 200)


def _page(
    request: HttpRequest, step: str, form: CodeForm, *, device: TOTPDevice | None = None, status: int = 200
) -> HttpResponse:
    context = {
        **admin.site.each_context(request),
        "step": step,
        "form": form,
        "next": _next(request),
        "required": required_for(request.user),
        "title": "Second factor",
    }
    if device is not None:
        # The key in the form authenticator apps accept typed in (base32, in groups of four).
        secret = device.config_url.split("secret=", 1)[1].split("&", 1)[0]
        context["secret_groups"] = [secret[i : i + 4] for i in range(0, len(secret), 4)]
        context["config_url"] = device.config_url
    return render(request, "admin/second_factor.html", context, status=status)


verify_view = admin.site.admin_view(verify)
setup_view = admin.site.admin_view(setup)
