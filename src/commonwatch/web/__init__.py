"""The web shell: layout, navigation, i18n-aware rendering, static assets."""
