// Package docs holds the tests of the repository's own documentation: that it stands alone
// (no file refers to design notes or data outside the repository, except through the one
// fixtures setting) and that every relative link in its Markdown leads somewhere.
package docs
