'use strict';
// Django admin's autocomplete widgets (Select2), made accessible and limited to the topic edited.
//
// Loaded with `defer` from templates/admin/base_site.html: it runs after the page's media
// (jQuery, Select2, admin/js/autocomplete.js) and before jQuery's ready handlers, so it replaces
// Django's djangoAdminSelect2 before any widget is set up (including rows added later).
{
    const $ = window.django && window.django.jQuery;

    // The topic whose rows the autocompletes may offer: the form's own topic field when it has
    // one (its value may change before saving), else the topic of the object edited (the page
    // says which, see templates/admin/change_form.html). The server checks it again.
    const editedTopic = () => {
        const field = document.getElementById('id_topic');
        if (field && field.value) {
            return field.value;
        }
        const marker = document.getElementById('edited-topic');
        return marker ? marker.dataset.topic : '';
    };

    // The name a screen reader reads for a widget: its label (tabular inline rows have a
    // visually hidden one), without the trailing colon.
    const nameOf = (element) => {
        const label = element.id && document.querySelector(`label[for="${element.id}"]`);
        const text = label ? label.textContent : element.getAttribute('aria-label') || element.name;
        return text.replace(/:\s*$/, '').trim();
    };

    const nameWidget = (element) => {
        const container = element.nextElementSibling;
        if (!container || !container.classList.contains('select2')) {
            return;
        }
        const name = nameOf(element);
        container.querySelectorAll('.select2-search__field').forEach((field) => {
            field.setAttribute('aria-label', name);
        });
        const single = container.querySelector('.select2-selection--single');
        if (single) {
            // Select2 names the box by the chosen value only (nothing when empty): name it by
            // its label first, then the value.
            const nameId = `${element.id}-a11y-name`;
            if (!document.getElementById(nameId)) {
                const hidden = document.createElement('span');
                hidden.id = nameId;
                hidden.hidden = true;
                hidden.textContent = name;
                container.appendChild(hidden);
            }
            const rendered = single.getAttribute('aria-labelledby') || '';
            if (!rendered.includes(nameId)) {
                single.setAttribute('aria-labelledby', `${nameId} ${rendered}`.trim());
            }
            // The chosen value (a read-only textbox to Select2) is named by the label too.
            single.querySelectorAll('.select2-selection__rendered').forEach((value) => {
                value.setAttribute('aria-labelledby', nameId);
            });
        }
        // The search box of an open single-choice dropdown is created on opening.
        $(element).on('select2:open', () => {
            document.querySelectorAll('.select2-container--open .select2-search__field').forEach((field) => {
                field.setAttribute('aria-label', name);
            });
        });
    };

    if ($ && $.fn.select2) {
        $.fn.djangoAdminSelect2 = function() {
            $.each(this, function(i, element) {
                // Each chosen item of a multiple choice has its own remove button; Select2's
                // "clear all" cross would sit directly in its list (invalid list markup).
                if (element.multiple) {
                    element.removeAttribute('data-allow-clear');
                }
                $(element).select2({
                    ajax: {
                        data: (params) => ({
                            term: params.term,
                            page: params.page,
                            app_label: element.dataset.appLabel,
                            model_name: element.dataset.modelName,
                            field_name: element.dataset.fieldName,
                            topic: editedTopic()
                        })
                    }
                });
                nameWidget(element);
            });
            return this;
        };
    }
}

// Django's two-box group and permission pickers (SelectFilter2, set up on load) put an aria-label
// on a plain span, which ARIA does not allow; as an image the span keeps its name.
window.addEventListener('load', () => {
    document.querySelectorAll('.search-label-icon[aria-label]:not([role])').forEach((icon) => {
        icon.setAttribute('role', 'img');
    });
});
