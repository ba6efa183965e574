"""Optional sign-in to the admin through the hospital's SSO (OpenID Connect, mozilla-django-oidc).

Off unless OIDC_RP_CLIENT_ID is set (imaging_advisor/settings.py checks the rest at start-up and
mounts these URLs only then). mozilla-django-oidc runs the protocol: the authorization request
with state, nonce and PKCE, the code exchange, the id_token's signature against the provider's
JWKS, the userinfo call. This module decides who that is here: the one existing, active staff
account whose email is the provider's verified email (any case). Nobody is created, and anything
else is refused with a sentence on the admin login page. The password form stays for break-glass
accounts; the second factor (decisions/second_factor.py) is still asked for after this sign-in,
because the provider's own checks are not visible here (docs/oidc.md).
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django import template
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

logger = logging.getLogger(__name__)


class SignInRefused(Exception):
    """The provider's answer signs no one in here; the message is for the person signing in.

    Not a PermissionDenied: django.contrib.auth would then send user_login_failed and django-axes
    would count it against the client's address. The provider has already checked the person, so
    there is nothing to guess here, and a hospital's staff often share one address.
    """


def provider_name() -> str:
    return str(settings.OIDC_PROVIDER_NAME)


def unverifiable(why: object) -> SignInRefused:
    logger.warning("SSO sign-in: the identity provider's answer failed a check: %s", why)
    return SignInRefused(
        f"The answer from {provider_name()} could not be verified, so you were not signed in. "
        "Try again; if it keeps failing, tell IT."
    )


class StaffByEmailBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """Signs in the one active staff account whose email the provider vouches for."""

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> AbstractBaseUser | None:
        # Only the callback view's call (it passes the nonce); never a password sign-in's, even one
        # posted to a URL that carries a code and state.
        if not settings.OIDC_ENABLED or "nonce" not in credentials or "password" in credentials:
            return None
        try:
            user: AbstractBaseUser | None = super().authenticate(request, **credentials)
        except requests.RequestException as error:
            logger.warning("SSO sign-in: the identity provider did not answer as expected: %s", error)
            raise SignInRefused(
                f"{provider_name()} did not answer, so you could not be signed in. Try again in a "
                "few minutes; if it keeps failing, tell IT."
            ) from error
        except (SuspiciousOperation, jwt.PyJWTError) as error:
            raise unverifiable(error) from error
        return user

    def get_user(self, user_id: int) -> AbstractBaseUser | None:
        # ModelBackend's, which the library's replaces: a session of an account switched off
        # since it signed in ends at its next request.
        return ModelBackend.get_user(self, user_id)

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> AbstractBaseUser:
        """The account for the person the id_token (payload, already verified) and userinfo name."""
        # Raised as refusals, not SuspiciousOperation: the library would turn that into a bare
        # failure, counted by django-axes and shown as "start again".
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if settings.OIDC_RP_CLIENT_ID not in audiences:
            raise unverifiable(f"the id_token's audience {audience!r} is not this client")
        # OpenID Connect Core 3.1.3.7: the issuer must be exactly the provider's (the library
        # checks the signature, not who says they issued the token).
        if payload.get("iss") != settings.OIDC_OP_ISSUER:
            raise unverifiable(
                f"the id_token's issuer {payload.get('iss')!r} is not {settings.OIDC_OP_ISSUER}"
            )
        try:
            claims = self.get_userinfo(access_token, id_token, payload)
        except (SuspiciousOperation, jwt.PyJWTError) as error:
            raise unverifiable(error) from error
        # OpenID Connect Core 5.3.2: userinfo is about the id_token's subject, or not to be used.
        if claims.get("sub") != payload.get("sub"):
            raise unverifiable("the userinfo's sub is not the id_token's")
        email = str(claims.get("email") or "").strip()
        if not email:
            raise SignInRefused(
                f"{provider_name()} did not tell us your email address, which is how your account "
                "here is found. Ask IT to release the email claim to Imaging Advisor."
            )
        verified = claims.get("email_verified")
        if settings.OIDC_REQUIRE_VERIFIED_EMAIL and verified is not True and verified != "true":
            raise SignInRefused(
                f"{provider_name()} has not verified the email address {email}, so it cannot "
                "open an account here. Ask IT to verify it."
            )
        return self.account_for(email)

    def account_for(self, email: str) -> AbstractBaseUser:
        accounts: list[AbstractBaseUser] = list(self.UserModel.objects.filter(email__iexact=email)[:2])
        ask = "Ask an administrator of Imaging Advisor"
        if not accounts:
            raise SignInRefused(
                f"No account here has the email address {email}. {ask} to add it to your "
                "account (nobody is given an account by signing in)."
            )
        if len(accounts) > 1:
            raise SignInRefused(
                f"More than one account here has the email address {email}, so it is not clear "
                f"which is yours. {ask} to keep it on one account only."
            )
        account = accounts[0]
        if not account.is_active:
            raise SignInRefused(f"The account with the email address {email} is switched off. {ask}.")
        if not getattr(account, "is_staff", False):
            raise SignInRefused(f"The account with the email address {email} may not use the admin. {ask}.")
        return account


class CallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    """The provider sends the browser back here; every refusal lands on the admin login page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            response: HttpResponse = super().get(request)
        except SignInRefused as refusal:
            return refused(request, str(refusal))
        except SuspiciousOperation as error:  # the state is not one this browser's session started
            logger.warning("SSO sign-in: %s", error)
            return refused(request, _START_AGAIN)
        return response

    def login_failure(self) -> HttpResponse:
        error = str(self.request.GET.get("error", ""))[:100]
        if error:
            return refused(self.request, f"{provider_name()} did not sign you in ({error}).")
        return refused(self.request, _START_AGAIN)

    @property
    def success_url(self) -> str:
        wanted = self.request.session.get("oidc_login_next") or ""
        # Only a page of the admin, as after a password sign-in.
        if isinstance(wanted, str) and wanted.startswith("/admin/") and not wanted.startswith("//"):
            return wanted
        return reverse("admin:index")


_START_AGAIN = (
    "This sign-in could not be finished: it took too long, or began in another window or browser. "
    "Start again with the button below."
)


def refused(request: HttpRequest, message: str) -> HttpResponseRedirect:
    logger.info("SSO sign-in refused: %s", message)
    messages.error(request, message)
    return HttpResponseRedirect(reverse("admin:login"))


urlpatterns = [
    path("start/", OIDCAuthenticationRequestView.as_view(), name="sso-start"),
    path("callback/", CallbackView.as_view(), name="sso-callback"),
]

# The admin login template asks, through this library, whether to show the button
# (TEMPLATES' "libraries": {% load sign_in %}).
register = template.Library()


@register.simple_tag
def sso_provider() -> str:
    """The provider's name when sign-in through it is on, else an empty string."""
    return provider_name() if settings.OIDC_ENABLED else ""
